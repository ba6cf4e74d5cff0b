package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/throttle"
)

// DeviceNotices is told of each successful login, to notice new devices (see
// verification.Service.LoginFrom): it records the device and, the first time it is seen for
// an account that has logged in before, mails the user. A failure is logged; the login stands.
type DeviceNotices interface {
	LoginFrom(ctx context.Context, user store.User, device Device) error
}

// Device is where a login came from: its client, the key that names the device (see
// DeviceKey) and when.
type Device struct {
	Client Client
	Key    string
	At     time.Time
}

// DeviceKey names the device a client is: its network (the throttle's IP key: an IPv4
// address, an IPv6 /64) and its user agent, hashed so that the key is short and says
// nothing by itself. A known browser on a new network is a new device, as is a new browser
// on a known network: either is what a stolen password used elsewhere looks like.
func DeviceKey(c Client) string {
	sum := sha256.Sum256([]byte(throttle.IPKey(c.IP) + "\x00" + c.UserAgent))
	return hex.EncodeToString(sum[:16])
}

// loggedIn tells the device notices, if any, of user's login from client at at.
func (s *Service) loggedIn(ctx context.Context, user store.User, client Client, at time.Time) {
	if s.cfg.Devices == nil {
		return
	}
	// Not cancelled with the request: the session exists, so its device is recorded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.cfg.Devices.LoginFrom(ctx, user, Device{Client: client, Key: DeviceKey(client), At: at}); err != nil {
		s.log.WarnContext(ctx, "record login device", "user_id", user.ID, "err", err)
	}
}
