// Package fleet holds only tests: TestFleet builds the authapi binary and runs three
// "authapi serve" processes on one fresh PostgreSQL database, the way an operator runs a fleet
// behind a load balancer, and checks through the generated client what such a fleet promises
// (shared tokens and keys, revocation on every instance within a second, one winner of a
// refresh race, shared login throttling, key rotation, no acknowledged write lost to a crash).
// TestResourceServersFollowTheFleet runs two instances with a Go and a Node resource server
// following their Shared Signals streams (revocation delay, fail-closed, resume after restart).
package fleet
