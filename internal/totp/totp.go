// Package totp is the TOTP second factor (RFC 6238): secrets, otpauth:// URIs with a QR code,
// and checking a code, which yields the time step it was for. Replays are refused by the
// store (AcceptTOTPStep), which accepts each step of a factor once.
package totp

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
)

// The parameters every authenticator app supports: 30 s, 6 digits, SHA-1.
const (
	Period = 30
	Digits = otp.DigitsSix
	// Skew is how many steps either side of now a code may be for (clock drift, typing).
	Skew = 1
)

// Enrolment is a new secret and how to hand it to an authenticator app.
type Enrolment struct {
	Secret string // base32, no padding
	URI    string // otpauth://totp/...
	QRSVG  string // the URI as a QR code
}

// New makes a secret for account at issuer.
func New(issuer, account string) (Enrolment, error) {
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{Issuer: issuer, AccountName: account,
		Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
	if err != nil {
		return Enrolment{}, fmt.Errorf("totp secret: %w", err)
	}
	svg, err := QRSVG(key.URL())
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL(), QRSVG: svg}, nil
}

// Step is the time step of t.
func Step(t time.Time) int64 { return t.Unix() / Period }

// Check returns the step within Skew of now that code is right for, the latest first, and
// whether there is one. A code is only well formed with Digits digits.
func Check(secret, code string, now time.Time) (int64, bool) {
	if len(code) != Digits.Length() || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	for d := Skew; d >= -Skew; d-- {
		step := Step(now) + int64(d)
		want, err := Code(secret, step)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// Code is secret's code for step.
func Code(secret string, step int64) (string, error) {
	return pqtotp.GenerateCodeCustom(secret, time.Unix(step*Period, 0).UTC(),
		pqtotp.ValidateOpts{Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1})
}

// Label binds a user's sealed secret to the user (token.SealBytes): a sealed secret copied to
// another user's row does not open.
func Label(userID int64) string { return fmt.Sprintf("totp:%d", userID) }
