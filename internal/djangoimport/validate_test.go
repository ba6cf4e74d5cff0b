package djangoimport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/djangoimport"
	"github.com/authapi/authapi/internal/djangoimport/djangotest"
	"github.com/authapi/authapi/internal/store/storetest"
)

// TestImportValidates: a Django user whose fields break the rules of user creation here is
// skipped with the API's message for each field at fault, and so is one whose password hash
// has costs above the maxima (nothing is hashed to find out); a username is imported
// NFKC-normalised, and one that equals another's once normalised clashes.
func TestImportValidates(t *testing.T) {
	hash := djangotest.PBKDF2(djangotest.Password, "salt1234", 1000)
	joined := time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)
	user := func(id int64, username, first, email, password string) djangoimport.User {
		return djangoimport.User{ID: id, Username: username, Password: password, FirstName: first, LastName: "Seed",
			Email: email, IsActive: true, DateJoined: joined}
	}
	users := []djangoimport.User{
		user(1, "ａｄｍｉｎ", "Admin", "admin@example.com", hash), // fullwidth: imported as "admin"
		user(2, "Admin", "Other", "other@example.com", hash), // equals "admin" once normalised, ignoring case
		user(3, "<b>bold</b>", "B", "b@example.com", hash),
		user(4, "two words", "T", "t@example.com", hash),
		user(5, "line\nbreak", "L", "l@example.com", hash),
		user(6, strings.Repeat("a", 200), "A", "a@example.com", hash),
		user(7, "mail", "M", "not-an-email <b>", hash),
		user(8, "bidi", "evil\u202Egnp.exe", "bidi@example.com", hash),
		user(9, "costly", "C", "c@example.com", "pbkdf2_sha256$10000000$seasalt$JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A="),
		user(10, "argon", "A", "argon@example.com", "$argon2id$v=19$m=1048576,t=100,p=255$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"),
		user(11, "blank", "", "", hash), // Django allows blank names and email
		user(12, "zwnj", "Mohammad\u200CReza", "zwnj@example.com", hash),
	}
	const (
		msgUsername = "username: Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
		msgTooLong  = "username: Ensure this field has no more than 150 characters."
	)
	want := map[int64]struct {
		outcome djangoimport.Outcome
		reason  string
	}{
		1:  {djangoimport.Imported, ""},
		2:  {djangoimport.Clashed, `equals that of Django user "ａｄｍｉｎ" (id 1)`},
		3:  {djangoimport.Skipped, msgUsername},
		4:  {djangoimport.Skipped, msgUsername},
		5:  {djangoimport.Skipped, msgUsername},
		6:  {djangoimport.Skipped, msgTooLong},
		7:  {djangoimport.Skipped, "email: Enter a valid email address."},
		8:  {djangoimport.Skipped, "first_name: Invisible formatting characters are not allowed."},
		9:  {djangoimport.Skipped, "costs above the maxima: pbkdf2: 10000000 iterations, above 2000000"},
		10: {djangoimport.Skipped, "costs above the maxima: argon2id m=1048576,t=100,p=255"},
		11: {djangoimport.Imported, ""},
		12: {djangoimport.Imported, ""},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			src := mustOpen(t, djangotest.SQLite(t, users))
			st := storetest.Open(t, backend)
			rep := mustImport(t, src, st, djangoimport.Options{})
			if len(rep.Results) != len(users) {
				t.Fatalf("%d results for %d users", len(rep.Results), len(users))
			}
			for _, r := range rep.Results {
				w := want[r.ID]
				if r.Outcome != w.outcome || !strings.Contains(r.Reason, w.reason) {
					t.Errorf("user %d %q: %s (%s), want %s (%s)", r.ID, r.Username, r.Outcome, r.Reason, w.outcome, w.reason)
				}
			}
			u, err := st.UserByID(context.Background(), 1)
			if err != nil || u.Username != "admin" {
				t.Errorf("user 1 = %q, %v; want the fullwidth name stored as \"admin\"", u.Username, err)
			}
			if got, err := st.UserByUsername(context.Background(), "ADMIN"); err != nil || got.ID != 1 {
				t.Errorf("UserByUsername(ADMIN) = %d, %v; want 1", got.ID, err)
			}
		})
	}
}
