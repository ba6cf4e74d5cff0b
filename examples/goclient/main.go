// Command goclient shows authapi's generated Go client: it logs in, calls the API with the
// access token, and refreshes the token pair when the access token has expired.
//
//	go run ./examples/goclient -url http://127.0.0.1:8000 -username admin -password '...'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/authapi/authapi/gen/client"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8000", "authapi base URL")
	username := flag.String("username", "admin", "username")
	password := flag.String("password", os.Getenv("AUTHAPI_PASSWORD"), "password (or AUTHAPI_PASSWORD)")
	flag.Parse()
	if err := run(context.Background(), *url, *username, *password); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url, username, password string) error {
	api, err := client.NewClientWithResponses(url)
	if err != nil {
		return err
	}
	login, err := api.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: username, Password: password})
	if err != nil {
		return err
	}
	if login.JSON200 == nil {
		return fmt.Errorf("login: %d %s", login.StatusCode(), login.Body)
	}
	s := &session{api: api, pair: *login.JSON200}

	var welcome *client.WelcomeResponse
	err = s.call(ctx, func(auth client.RequestEditorFn) (int, error) {
		welcome, err = api.WelcomeWithResponse(ctx, auth)
		if err != nil {
			return 0, err
		}
		return welcome.StatusCode(), nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("%s %s: %s\n", welcome.JSON200.Name, welcome.JSON200.ApiVersion, welcome.JSON200.Message)

	var account *client.GetAccountResponse
	err = s.call(ctx, func(auth client.RequestEditorFn) (int, error) {
		account, err = api.GetAccountWithResponse(ctx, auth)
		if err != nil {
			return 0, err
		}
		return account.StatusCode(), nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("logged in as %s (id %d, %s)\n", account.JSON200.Username, account.JSON200.Id, account.JSON200.Email)
	return nil
}

// session holds a token pair and refreshes it when the API says the access token is no
// longer valid. authapi rotates refresh tokens, so the new refresh token replaces the old.
type session struct {
	api  *client.ClientWithResponses
	mu   sync.Mutex
	pair client.TokenPair
}

func (s *session) bearer() client.RequestEditorFn {
	s.mu.Lock()
	access := s.pair.Access
	s.mu.Unlock()
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+access)
		return nil
	}
}

// call runs do with the access token; on 401 it refreshes once and tries again.
func (s *session) call(ctx context.Context, do func(client.RequestEditorFn) (int, error)) error {
	status, err := do(s.bearer())
	if err != nil || status != http.StatusUnauthorized {
		return err
	}
	if err := s.refresh(ctx); err != nil {
		return err
	}
	status, err = do(s.bearer())
	if err == nil && status == http.StatusUnauthorized {
		return errors.New("still unauthorized after refreshing: log in again")
	}
	return err
}

func (s *session) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.api.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: s.pair.Refresh})
	if err != nil {
		return err
	}
	if r.JSON200 == nil {
		return fmt.Errorf("refresh: %d %s", r.StatusCode(), r.Body)
	}
	s.pair.Access = r.JSON200.Access
	if r.JSON200.Refresh != nil {
		s.pair.Refresh = *r.JSON200.Refresh
	}
	return nil
}
