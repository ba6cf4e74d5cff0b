package users_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/userfields"
	"github.com/authapi/authapi/internal/users"
)

const strongPassword = "super_secret_password"

func forEachBackend(t *testing.T, fn func(t *testing.T, st *store.Store, svc *users.Service)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, backend)
			fn(t, st, users.New(st, password.NewHasher(password.FastParams(), password.Limit{}), users.Config{}))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func mustFieldErrors(t *testing.T, what string, err error) *userfields.Errors {
	t.Helper()
	var fe *userfields.Errors
	if !errors.As(err, &fe) {
		t.Fatalf("%s: error %v, want *userfields.Errors", what, err)
	}
	return fe
}

// TestBootstrapAudited: the first start's superuser is recorded as made by serve.
func TestBootstrapAudited(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store, svc *users.Service) {
		ctx := context.Background()
		created, _, err := svc.Bootstrap(ctx, "admin", strongPassword)
		if err != nil || !created {
			t.Fatalf("bootstrap: %v %v", created, err)
		}
		events, _, err := audit.List(ctx, st, audit.Query{})
		if err != nil || len(events) != 1 || events[0].Action != string(audit.UserCreated) || events[0].UserAgent != "authapi serve" ||
			events[0].TargetID == 0 || events[0].ActorID != 0 {
			t.Fatalf("events %+v, %v; want the superuser's creation by serve", events, err)
		}
	})
}

// TestBootstrapOnlyOnEmpty: an empty password is generated and returned once; a database
// that has users is left alone.
func TestBootstrapOnlyOnEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store, svc *users.Service) {
		ctx := context.Background()
		created, generated, err := svc.Bootstrap(ctx, "", "")
		if err != nil || !created || generated == "" {
			t.Fatalf("bootstrap = %v, %q, %v; want created with a generated password", created, generated, err)
		}
		u, err := st.UserByUsername(ctx, "admin")
		if err != nil || !u.IsSuperuser || !u.IsStaff || !u.IsActive {
			t.Fatalf("admin = %+v, %v; want an active staff superuser", u, err)
		}
		created, generated, err = svc.Bootstrap(ctx, "other", strongPassword)
		if err != nil || created || generated != "" {
			t.Fatalf("second bootstrap = %v, %q, %v; want nothing done", created, generated, err)
		}
	})
}

// TestCreateSuperuserRefusals: refused input comes back field by field, a taken username
// once the other fields pass.
func TestCreateSuperuserRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store, svc *users.Service) {
		ctx := context.Background()
		in := users.NewUser{Username: "root", FirstName: "Root", LastName: "User", Email: "root@example.com", Password: strongPassword}
		if _, err := svc.CreateSuperuser(ctx, in); err != nil {
			t.Fatal(err)
		}
		weak := in
		weak.Username, weak.Password = "ROOT", "password"
		fe := mustFieldErrors(t, "weak password, taken username", mustFail(svc.CreateSuperuser(ctx, weak)))
		if want := "password: This password is too common."; fe.Error() != want || !fe.Policy {
			t.Errorf("error %q (policy %v), want %q (policy true)", fe.Error(), fe.Policy, want)
		}
		weak.Password = strongPassword
		fe = mustFieldErrors(t, "taken username", mustFail(svc.CreateSuperuser(ctx, weak)))
		if want := "username: A user with that username already exists."; fe.Error() != want || fe.Policy {
			t.Errorf("error %q (policy %v), want %q", fe.Error(), fe.Policy, want)
		}
	})
}

func mustFail(_ store.User, err error) error { return err }

// TestCreateReportsEverything: the API's create names every refused field at once, the taken
// username too, and keeps what the caller already refused.
func TestCreateReportsEverything(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store, svc *users.Service) {
		ctx := context.Background()
		if _, err := svc.Create(ctx, users.Changes{Username: ptr("alice"), FirstName: ptr("A"), LastName: ptr("L"),
			Email: ptr("a@example.com"), Password: ptr(strongPassword)}, audit.Source{}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Create(ctx, users.Changes{Username: ptr("ALICE"), LastName: ptr(""), Email: ptr("nope"),
			Password: ptr("password"), Invalid: map[string][]string{"is_staff": {"Must be a boolean."}}}, audit.Source{})
		fe := mustFieldErrors(t, "create", err)
		want := "email: Enter a valid email address.; first_name: This field is required.; is_staff: Must be a boolean.; " +
			"last_name: This field may not be blank.; password: This password is too common.; username: A user with that username already exists."
		if fe.Error() != want || fe.Policy {
			t.Errorf("error %q (policy %v),\nwant %q", fe.Error(), fe.Policy, want)
		}
	})
}

// TestUpdate: not found, the caller's own password and deactivation, the last superuser.
func TestUpdate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st *store.Store, svc *users.Service) {
		ctx := context.Background()
		root, err := svc.CreateSuperuser(ctx, users.NewUser{Username: "root", FirstName: "Root", LastName: "User", Email: "root@example.com", Password: strongPassword})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Patch(ctx, root.ID+100, users.Changes{IsStaff: ptr(true)}, audit.Source{}); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("patch of a missing user: %v, want ErrNotFound", err)
		}
		self := audit.Source{ActorID: root.ID}
		fe := mustFieldErrors(t, "own password", mustFail(svc.Patch(ctx, root.ID, users.Changes{Password: ptr(strongPassword + "2"), IsActive: ptr(false)}, self)))
		if len(fe.Fields) != 2 || len(fe.Fields["password"]) != 1 || len(fe.Fields["is_active"]) != 1 {
			t.Errorf("fields %v, want password and is_active refused", fe.Fields)
		}
		if _, err := svc.Patch(ctx, root.ID, users.Changes{IsStaff: ptr(false)}, audit.Source{}); !errors.Is(err, users.ErrLastSuperuser) {
			t.Errorf("demoting the last superuser: %v, want ErrLastSuperuser", err)
		}
		if err := svc.Delete(ctx, root.ID, audit.Source{}); !errors.Is(err, users.ErrLastSuperuser) {
			t.Errorf("deleting the last superuser: %v, want ErrLastSuperuser", err)
		}
		u, err := svc.Replace(ctx, root.ID, users.Changes{Username: ptr("ｒｏｏｔ２"), FirstName: ptr("R"), LastName: ptr("U"), Email: ptr("r@example.com")}, audit.Source{})
		if err != nil || u.Username != "root2" || u.FirstName != "R" || !u.IsSuperuser {
			t.Errorf("replace = %+v, %v; want root2, R, still a superuser", u, err)
		}
		if err := svc.Delete(ctx, root.ID+100, audit.Source{}); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("delete of a missing user: %v, want ErrNotFound", err)
		}
	})
}
