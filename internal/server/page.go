package server

import (
	"fmt"
	"net/url"
)

// Every listing pages the same way: limit (defaultPageSize when absent, at most maxPageSize)
// and offset in the query, X-Total-Count and Link rel="next" in the answer. The spec declares
// the same bounds, and audit.Query its own: TestPageBounds pins the three equal.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageFields adds to fields what is wrong with limit and offset. The spec bounds them and the
// validator refuses what it does not allow; this keeps the handlers safe on their own.
func pageFields(fields map[string][]string, limit int, offset int64) {
	if limit < 1 || limit > maxPageSize {
		fields["limit"] = []string{fmt.Sprintf("Ensure this value is between 1 and %d.", maxPageSize)}
	}
	if offset < 0 {
		fields["offset"] = []string{"Ensure this value is greater than or equal to 0."}
	}
}

// nextPage is the Link header of the page after a page of n items at offset, when more
// follow, at path with the query next returns for the next offset (the same filters, so that
// following Link walks the same list); nil on the last page.
func nextPage(path string, n int, offset int64, more bool, next func(offset int64) url.Values) *string {
	after := offset + int64(n)
	if n == 0 || !more {
		return nil
	}
	link := fmt.Sprintf(`<%s?%s>; rel="next"`, path, next(after).Encode())
	return &link
}
