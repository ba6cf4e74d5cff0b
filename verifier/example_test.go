package verifier_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/authapi/authapi/verifier"
)

// A resource server: tokens checked locally, revocations from the stream, fail closed.
func Example() {
	v, err := verifier.New(context.Background(), verifier.Config{
		Issuer:       "https://auth.example.com",
		Audience:     []string{"https://auth.example.com"},
		ClientID:     os.Getenv("AUTHAPI_CLIENT_ID"),
		ClientSecret: os.Getenv("AUTHAPI_CLIENT_SECRET"),
		StreamName:   "orders-api@host-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	http.Handle("GET /orders", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "orders of user %s (session %s)\n", c.Subject, c.SessionID)
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", nil))
}
