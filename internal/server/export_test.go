package server

// Page bounds, for TestPageBounds.
const (
	DefaultPageSize = defaultPageSize
	MaxPageSize     = maxPageSize
)
