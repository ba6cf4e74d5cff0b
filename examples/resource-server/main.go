// Command resource-server is an API protected by authapi's access tokens through the verifier
// package: it checks each token locally and, given an API client's credentials, follows
// authapi's revocation stream, so that a revoked session is refused within a second.
//
//	go run ./examples/resource-server -issuer http://127.0.0.1:8000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/authapi/authapi/verifier"
)

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8000", "authapi's issuer URL (its --public-url)")
	audience := flag.String("audience", "", "the aud this API accepts (default: the issuer, authapi's default audience)")
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	if *audience == "" {
		*audience = *issuer
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *issuer, *audience, *addr); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, issuer, audience, addr string) error {
	v, err := verifier.New(ctx, verifier.Config{
		Issuer:   issuer,
		Audience: []string{audience},
		// An API client's credentials (authapi clients create --scopes introspect,ssf.read,ssf.manage)
		// turn on the revocation stream; without them tokens are valid until they expire.
		ClientID:     os.Getenv("AUTHAPI_CLIENT_ID"),
		ClientSecret: os.Getenv("AUTHAPI_CLIENT_SECRET"),
	})
	if err != nil {
		return err
	}
	defer v.Close()

	srv := &http.Server{Addr: addr, Handler: routes(v), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("resource server on http://%s (issuer %s, stream %v)", addr, issuer, v.Health().Enabled)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// routes is the API: /hello needs an access token, /health tells the stream's state.
func routes(v *verifier.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /hello", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		writeJSON(w, map[string]any{"hello": c.Subject, "session": c.SessionID, "client_id": c.ClientID, "expires_at": c.ExpiresAt})
	})))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		h := v.Health()
		writeJSON(w, map[string]any{"stream": h.Enabled, "stream_id": h.StreamID, "stale": h.Stale, "last_heard": h.LastHeard, "events": h.Events, "revoked": h.Revoked})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
