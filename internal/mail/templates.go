package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/authapi/authapi/internal/store"
)

//go:embed templates/*
var defaultTemplates embed.FS

// Kinds of messages: each is a template, three files in templates/ (and in an override
// directory): <kind>.subject.txt, <kind>.txt and <kind>.html.
const (
	KindPasswordReset   = "password_reset"
	KindPasswordChanged = "password_changed"
)

// Data is what a template is given. Fields a kind does not use are zero.
type Data struct {
	AppName  string // the --api-name
	Username string
	Email    string
	// Link is the link the message exists for (a reset link); ExpiresIn how long it works,
	// in words ("30 minutes").
	Link      string
	ExpiresIn string
	// At is when the event the message tells of happened, IP and UserAgent where from.
	At            time.Time
	IP, UserAgent string
	// Extra holds what other kinds need, by name.
	Extra map[string]string
}

// Content is a rendered message's subject and bodies.
type Content struct{ Subject, Text, HTML string }

// Templates renders messages by kind.
type Templates struct {
	subject map[string]*texttemplate.Template
	text    map[string]*texttemplate.Template
	html    map[string]*htmltemplate.Template
}

// LoadTemplates parses the embedded templates and, when dir is not empty, the files of dir
// that replace them, file by file (a file of dir that replaces none is an error, so that a
// typo does not go unnoticed). Each template is rendered once with sample data, so a
// template that cannot render fails here, at start, rather than at the first message.
func LoadTemplates(dir string) (*Templates, error) {
	files := map[string]string{}
	err := fs.WalkDir(defaultTemplates, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := defaultTemplates.ReadFile(path)
		files[strings.TrimPrefix(path, "templates/")] = string(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("--mail-templates: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			if _, ok := files[e.Name()]; !ok {
				return nil, fmt.Errorf("--mail-templates: %s replaces no template (known: %s)", e.Name(), strings.Join(sortedKeys(files), ", "))
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("--mail-templates: %w", err)
			}
			files[e.Name()] = string(b)
		}
	}
	t := &Templates{subject: map[string]*texttemplate.Template{}, text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	var errs []error
	for name, src := range files {
		var err error
		switch {
		case strings.HasSuffix(name, ".subject.txt"):
			kind := strings.TrimSuffix(name, ".subject.txt")
			t.subject[kind], err = texttemplate.New(name).Option("missingkey=error").Parse(src)
		case strings.HasSuffix(name, ".txt"):
			kind := strings.TrimSuffix(name, ".txt")
			t.text[kind], err = texttemplate.New(name).Option("missingkey=error").Parse(src)
		case strings.HasSuffix(name, ".html"):
			kind := strings.TrimSuffix(name, ".html")
			t.html[kind], err = htmltemplate.New(name).Option("missingkey=error").Parse(src)
		default:
			err = fmt.Errorf("%s: want <kind>.subject.txt, <kind>.txt or <kind>.html", name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("mail template %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sample := Data{AppName: "authapi", Username: "alice", Email: "alice@example.com", Link: "https://auth.example.com/admin/reset-password#token=x",
		ExpiresIn: "30 minutes", At: time.Unix(0, 0).UTC(), IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Extra: map[string]string{}}
	for kind := range t.text {
		if _, err := t.Render(kind, sample); err != nil {
			errs = append(errs, err)
		}
	}
	return t, errors.Join(errs...)
}

// Render renders the message of kind with d.
func (t *Templates) Render(kind string, d Data) (Content, error) {
	subj, text := t.subject[kind], t.text[kind]
	if subj == nil || text == nil {
		return Content{}, fmt.Errorf("mail template %q: no %s.subject.txt and %s.txt", kind, kind, kind)
	}
	var out Content
	var b bytes.Buffer
	if err := subj.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mail template %s subject: %w", kind, err)
	}
	out.Subject = strings.Join(strings.Fields(b.String()), " ") // one line: no header injection
	b.Reset()
	if err := text.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mail template %s text: %w", kind, err)
	}
	out.Text = b.String()
	if h := t.html[kind]; h != nil {
		b.Reset()
		if err := h.Execute(&b, d); err != nil {
			return Content{}, fmt.Errorf("mail template %s html: %w", kind, err)
		}
		out.HTML = b.String()
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Composer makes the outbox rows of messages: it renders a kind with the app's name and
// gives the message its Message-ID at the domain of From.
type Composer struct {
	AppName   string
	Templates *Templates
	From      string
}

// Message renders the message of kind to to with d, at now (d.At defaults to it); the caller
// sets its UserID when the store does not.
func (c Composer) Message(kind, to string, now time.Time, d Data) (store.MailMessage, error) {
	d.AppName = c.AppName
	if d.At.IsZero() {
		d.At = now
	}
	content, err := c.Templates.Render(kind, d)
	if err != nil {
		return store.MailMessage{}, err
	}
	return store.MailMessage{MessageID: NewMessageID(c.From), Kind: kind, To: to,
		Subject: content.Subject, Text: content.Text, HTML: content.HTML, CreatedAt: now}, nil
}
