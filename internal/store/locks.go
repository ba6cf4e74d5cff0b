package store

// The classes of PostgreSQL's advisory locks, the first of each lock's two keys; the second is
// a hash of what is locked. One list, so that no two uses share a class: a shared class lets
// a key's hash collide with another use's and wait behind it.
const (
	// lockAccount and lockIP serialise ReserveLoginAttempt's counts (and LoginSucceeded takes
	// the account's), taken in this order.
	lockAccount = 1
	lockIP      = 2
	// lockInit is Init's session lock, on the schema.
	lockInit = 3
	// lockResetIP and lockResetDomain serialise the password reset limits' counts.
	lockResetIP     = 4
	lockResetDomain = 5
	// lockMailLimit serialises the other mail limits' counts.
	lockMailLimit = 6
)
