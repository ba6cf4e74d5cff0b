package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
)

// TestClientsAPIPermissions: only superusers manage API clients.
func TestClientsAPIPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		c := e.mustClient(t, admin, "rs", client.ScopeIntrospect)
		e.mustUser(t, "alice", regular)
		e.mustUser(t, "sam", staffRole)
		tokens := map[string]string{"regular": e.mustLogin(t, "alice").Access, "staff": e.mustLogin(t, "sam").Access}
		requests := map[string][2]string{
			"list": {http.MethodGet, "/api/v1/clients/"}, "create": {http.MethodPost, "/api/v1/clients/"},
			"get": {http.MethodGet, "/api/v1/clients/" + c.id + "/"}, "update": {http.MethodPatch, "/api/v1/clients/" + c.id + "/"},
			"delete": {http.MethodDelete, "/api/v1/clients/" + c.id + "/"}, "rotate": {http.MethodPost, "/api/v1/clients/" + c.id + "/rotate/"},
		}
		for name, r := range requests {
			resp, body := e.do(t, r[0], r[1], "application/json", `{"name":"x"}`)
			wantError(t, name+" anonymous", resp.StatusCode, body, 401, "not_authenticated")
			for who, tok := range tokens {
				resp, body := e.do(t, r[0], r[1], "application/json", `{"name":"x"}`, "Authorization", "Bearer "+tok)
				wantError(t, name+" "+who, resp.StatusCode, body, 403, "permission_denied")
			}
			// A client token is no user's token.
			resp, body = e.do(t, r[0], r[1], "application/json", `{"name":"x"}`, "Authorization", "Bearer "+e.mustClientToken(t, c, ""))
			wantError(t, name+" client token", resp.StatusCode, body, 401, "token_not_valid")
		}
	})
}

// TestClientsAPI: create, get, list with the state the console shows, update, rotate,
// delete; the secret appears once and nowhere else; each change is audited.
func TestClientsAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		admin := e.mustAdmin(t)
		created, err := e.client.CreateClientWithResponse(ctx, client.APIClientCreate{Name: "  orders  ",
			Scopes: &[]client.ClientScope{client.ScopeSSFRead, client.ScopeIntrospect, client.ScopeIntrospect}}, bearer(admin))
		if err != nil || created.JSON201 == nil {
			t.Fatalf("create: %v %s", err, created.Body)
		}
		c := created.JSON201.Client
		secret := created.JSON201.ClientSecret
		if c.Name != "orders" || len(c.Scopes) != 2 || c.Scopes[0] != client.ScopeIntrospect || c.Scopes[1] != client.ScopeSSFRead ||
			c.CreatedBy == nil || c.LastUsed != nil || c.Disabled || c.PreviousSecretExpires != nil {
			t.Errorf("created %+v", c)
		}

		e.mustClientToken(t, apiClient{c.ClientId, secret}, "")
		got, err := e.client.GetClientWithResponse(ctx, c.ClientId, bearer(admin))
		if err != nil || got.JSON200 == nil || got.JSON200.LastUsed == nil || !got.JSON200.LastUsed.Equal(e.clock.Now()) {
			t.Fatalf("get after use: %v %s", err, got.Body)
		}

		name := "orders-api"
		yes := true
		upd, err := e.client.UpdateClientWithResponse(ctx, c.ClientId, client.APIClientUpdate{Name: &name, Disabled: &yes}, bearer(admin))
		if err != nil || upd.JSON200 == nil || upd.JSON200.Name != name || !upd.JSON200.Disabled || len(upd.JSON200.Scopes) != 2 {
			t.Fatalf("update: %v %s", err, upd.Body)
		}
		rot, err := e.client.RotateClientSecretWithResponse(ctx, c.ClientId, client.APIClientRotateRequest{}, bearer(admin))
		if err != nil || rot.JSON200 == nil || rot.JSON200.ClientSecret == secret ||
			rot.JSON200.Client.PreviousSecretExpires == nil || !rot.JSON200.Client.PreviousSecretExpires.Equal(e.clock.Now().Add(24*time.Hour)) {
			t.Fatalf("rotate: %v %s", err, rot.Body)
		}
		list, err := e.client.ListClientsWithResponse(ctx, bearer(admin))
		if err != nil || list.JSON200 == nil || len(*list.JSON200) != 1 {
			t.Fatalf("list: %v %s", err, list.Body)
		}
		for what, body := range map[string][]byte{"list": list.Body, "get": got.Body, "update": upd.Body} {
			if strings.Contains(string(body), "secret\"") || strings.Contains(string(body), secret) {
				t.Errorf("%s sends a secret: %s", what, body)
			}
		}
		e.clock.Add(24 * time.Hour)
		admin = e.mustLogin(t, "root").Access
		got, _ = e.client.GetClientWithResponse(ctx, c.ClientId, bearer(admin))
		if got.JSON200.PreviousSecretExpires != nil {
			t.Error("previous_secret_expires still set once the overlap is over")
		}

		for name, body := range map[string]string{
			"blank name":    `{"name":"  "}`,
			"unknown scope": `{"name":"x","scopes":["admin"]}`,
			"unknown field": `{"name":"x","secret":"mine"}`,
		} {
			resp, b := e.do(t, http.MethodPost, "/api/v1/clients/", "application/json", body, "Authorization", "Bearer "+admin)
			wantError(t, name, resp.StatusCode, b, 400, "invalid")
		}
		resp, b := e.do(t, http.MethodPost, "/api/v1/clients/"+c.ClientId+"/rotate/", "application/json", `{"overlap_seconds":-1}`, "Authorization", "Bearer "+admin)
		wantError(t, "negative overlap", resp.StatusCode, b, 400, "invalid")
		resp, b = e.do(t, http.MethodGet, "/api/v1/clients/ac_nobody/", "", "", "Authorization", "Bearer "+admin)
		wantError(t, "unknown", resp.StatusCode, b, 404, "not_found")

		if r, err := e.client.DeleteClientWithResponse(ctx, c.ClientId, bearer(admin)); err != nil || r.StatusCode() != 204 {
			t.Fatalf("delete: %v", err)
		}
		resp, b = e.do(t, http.MethodDelete, "/api/v1/clients/"+c.ClientId+"/", "", "", "Authorization", "Bearer "+admin)
		wantError(t, "deleted twice", resp.StatusCode, b, 404, "not_found")

		events, err := e.client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{}, bearer(admin))
		if err != nil || events.JSON200 == nil {
			t.Fatal(err)
		}
		var actions []string
		for _, ev := range *events.JSON200 {
			if ev.ClientId != nil && *ev.ClientId == c.ClientId {
				actions = append(actions, string(ev.Action))
			}
		}
		if got := strings.Join(actions, " "); got != "client.deleted client.secret_rotated client.updated client.created" {
			t.Errorf("audit %q", got)
		}
		raw, _ := json.Marshal(events.JSON200)
		if strings.Contains(string(raw), secret) || strings.Contains(string(raw), rot.JSON200.ClientSecret) {
			t.Error("a secret is in the audit log")
		}
	})
}
