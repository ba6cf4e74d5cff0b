package server

import "context"

// callerClientID is the API client calling; until the client-credentials middleware lands
// (branch i17-clients) there is none, and every SSF operation finds no stream.
// TODO(i17 merge): replace with the client principal of clientFromContext.
func callerClientID(context.Context) string { return "" }
