package app

import (
	"github.com/authapi/authapi/internal/mail"
	"github.com/authapi/authapi/internal/verification"
)

// verificationConfig completes the address flows' settings c with the mail parts Start
// builds: the templates, links, From address, the email tokens' key and the outbox's kick.
func verificationConfig(c verification.Config, appName string, tpl *mail.Templates, links mail.Links, from string, key []byte, kick func()) verification.Config {
	c.AppName, c.Templates, c.Links, c.From, c.Key, c.Kick = appName, tpl, links, from, key, kick
	if c.AppName == "" {
		c.AppName = "authapi"
	}
	return c
}
