// Package passkeytest is a software authenticator for tests: it answers the WebAuthn options
// the API hands out as a browser with a security key or passkey would (ES256 keys, "none"
// attestation), so that tests exercise the relying party's checks through the real API.
// Its knobs (Origin, RPID, flags, counters) let a test send what an attacker or a faulty
// authenticator would.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator holds credentials and answers ceremonies. Its exported fields may be changed
// between ceremonies.
type Authenticator struct {
	// Origin is what clientDataJSON reports; RPID, when set, replaces the options' rp id in
	// the authenticator data (a phishing site's).
	Origin, RPID string
	// UserVerified sets the UV flag (a PIN or biometric was checked); BackupEligible the BE
	// and BS flags (a synced passkey). UserPresent false clears UP.
	UserVerified, BackupEligible bool
	UserPresent                  bool
	// NoCounter keeps every signature counter at 0, as authenticators without one do.
	NoCounter bool

	mu    sync.Mutex
	creds []*credential
}

type credential struct {
	id, userHandle []byte
	rpID           string
	key            *ecdsa.PrivateKey
	count          uint32
	discoverable   bool
}

// New returns an authenticator for pages at origin, testing presence and verifying the user.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, UserVerified: true, UserPresent: true}
}

var b64 = base64.RawURLEncoding

// Response is a PublicKeyCredential in its JSON form, ready to send to the API.
type Response = map[string]any

// options reads {"publicKey": {...}} (or the inner object) re-encoded into v.
func options(in map[string]any, v any) error {
	if pk, ok := in["publicKey"].(map[string]any); ok {
		in = pk
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	AuthenticatorSelection struct {
		ResidentKey string `json:"residentKey"`
	} `json:"authenticatorSelection"`
	Exclude []struct {
		ID string `json:"id"`
	} `json:"excludeCredentials"`
}

// ErrExcluded is Create's refusal when it holds one of the excluded credentials.
var ErrExcluded = errors.New("passkeytest: authenticator holds an excluded credential")

// Create makes a credential for the creation options (as the API gives them) and returns the
// attestation response.
func (a *Authenticator) Create(opts map[string]any) (Response, error) {
	var o creationOptions
	if err := options(opts, &o); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ex := range o.Exclude {
		for _, c := range a.creds {
			if b64.EncodeToString(c.id) == ex.ID {
				return nil, ErrExcluded
			}
		}
	}
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		return nil, fmt.Errorf("user id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &credential{id: make([]byte, 32), userHandle: handle, rpID: o.RP.ID, key: key,
		discoverable: o.AuthenticatorSelection.ResidentKey == "required" || o.AuthenticatorSelection.ResidentKey == "preferred"}
	_, _ = rand.Read(c.id)
	a.creds = append(a.creds, c)

	x, y := make([]byte, 32), make([]byte, 32)
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	raw := pub.Bytes() // 0x04 | X | Y
	copy(x, raw[1:33])
	copy(y, raw[33:65])
	coseKey, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		return nil, err
	}
	auth := a.authData(c, 0x40) // AT: attested credential data follows
	auth = append(auth, make([]byte, 16)...)
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.id)))
	auth = append(auth, c.id...)
	auth = append(auth, coseKey...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, err
	}
	client := a.clientData("webauthn.create", o.Challenge)
	return Response{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "cross-platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(client), "attestationObject": b64.EncodeToString(att),
			"transports": []string{"usb"},
		},
		"clientExtensionResults": map[string]any{},
	}, nil
}

type requestOptions struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	Allow     []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// ErrNoCredential is Get's refusal when it holds no credential the options accept.
var ErrNoCredential = errors.New("passkeytest: no matching credential")

// Get signs the request options (as the API gives them) with a matching credential (with no
// allowed credentials listed, a discoverable one) and returns the assertion response. Each
// use advances the credential's counter.
func (a *Authenticator) Get(opts map[string]any) (Response, error) {
	var o requestOptions
	if err := options(opts, &o); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var c *credential
	for _, cand := range a.creds {
		if cand.rpID != o.RPID {
			continue
		}
		if len(o.Allow) == 0 && cand.discoverable {
			c = cand
		}
		for _, al := range o.Allow {
			if al.ID == b64.EncodeToString(cand.id) {
				c = cand
			}
		}
		if c != nil {
			break
		}
	}
	if c == nil {
		return nil, ErrNoCredential
	}
	if !a.NoCounter {
		c.count++
	}
	auth := a.authData(c, 0)
	client := a.clientData("webauthn.get", o.Challenge)
	clientHash := sha256.Sum256(client)
	digest := sha256.Sum256(append(append([]byte{}, auth...), clientHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	resp := map[string]any{
		"clientDataJSON": b64.EncodeToString(client), "authenticatorData": b64.EncodeToString(auth),
		"signature": b64.EncodeToString(sig),
	}
	if c.discoverable {
		resp["userHandle"] = b64.EncodeToString(c.userHandle)
	}
	return Response{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"response": resp, "clientExtensionResults": map[string]any{},
	}, nil
}

// SetCounter sets the signature counter of every credential held (a clone's, or one reset).
func (a *Authenticator) SetCounter(n uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		c.count = n
	}
}

// authData is the authenticator data of c with the flags set by a and extra.
func (a *Authenticator) authData(c *credential, extra byte) []byte {
	rpID := c.rpID
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	flags := extra
	if a.UserPresent {
		flags |= 0x01
	}
	if a.UserVerified {
		flags |= 0x04
	}
	if a.BackupEligible {
		flags |= 0x08 | 0x10
	}
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, c.count)
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	raw, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return raw
}
