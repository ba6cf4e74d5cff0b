package totp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/totp"
)

func TestCheck(t *testing.T) {
	e, err := totp.New("authapi", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/authapi:alice?") || !strings.Contains(e.URI, "secret="+e.Secret) {
		t.Fatalf("uri %q", e.URI)
	}
	if !strings.HasPrefix(e.QRSVG, "<svg") || !strings.Contains(e.QRSVG, "h1v1h-1z") {
		t.Fatalf("svg %.80q", e.QRSVG)
	}
	now := time.Date(2026, 12, 6, 12, 0, 10, 0, time.UTC)
	step := totp.Step(now)
	for d := int64(-3); d <= 3; d++ {
		code, err := totp.Code(e.Secret, step+d)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := totp.Check(e.Secret, code, now)
		if want := d >= -1 && d <= 1; ok != want || (ok && got != step+d) {
			t.Errorf("code for step %+d: step %d, %v", d, got-step, ok)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", " 123456"} {
		if _, ok := totp.Check(e.Secret, bad, now); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRFC6238Vector pins the SHA-1 vector of RFC 6238 appendix B (59 s -> 94287082, 6 digits:
// 287082).
func TestRFC6238Vector(t *testing.T) {
	secret := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
	if code, err := totp.Code(secret, totp.Step(time.Unix(59, 0))); err != nil || code != "287082" {
		t.Fatalf("code %q, %v", code, err)
	}
}
