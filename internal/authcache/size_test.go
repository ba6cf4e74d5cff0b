package authcache

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestEntrySizeCountsEveryField fills each string, slice and pointer field of an entry in
// turn with a large value and checks that entrySize grows by it, so a field added to the
// claims, the user or the session cannot go uncounted by the memory bound.
func TestEntrySizeCountsEveryField(t *testing.T) {
	// Not held on the heap per entry: the cache drops password hashes, and a token type is
	// one of the package's constants.
	exempt := map[string]bool{"User.PasswordHash": true, "Claims.Type": true}
	const big = 4096
	long := strings.Repeat("x", big)
	at := time.Now()
	checked := 0
	for _, part := range []string{"Claims", "User", "Session"} {
		typ := reflect.TypeOf(Entry{}).FieldByIndex(fieldIndex(t, part))
		for i := range typ.Type.NumField() {
			f := typ.Type.Field(i)
			name := part + "." + f.Name
			if exempt[name] {
				continue
			}
			var e entry
			v := reflect.ValueOf(&e.Entry).Elem().FieldByName(part).Field(i)
			switch {
			case f.Type.Kind() == reflect.String:
				v.SetString(long)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
				v.Set(reflect.ValueOf([]string{long}))
			case f.Type == reflect.TypeOf(&at):
				v.Set(reflect.ValueOf(&at))
			case f.Type.Kind() == reflect.Pointer || f.Type.Kind() == reflect.Slice || f.Type.Kind() == reflect.Map:
				t.Fatalf("%s: a %s, which this test does not know how to fill", name, f.Type)
			default:
				continue // held in the struct itself
			}
			checked++
			min := int64(big)
			if f.Type.Kind() == reflect.Pointer {
				min = 24 // a time.Time
			}
			if grew := entrySize("", &e) - entrySize("", &entry{}); grew < min {
				t.Errorf("%s filled: entrySize grew by %d, want at least %d", name, grew, min)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d fields", checked)
	}
}

func fieldIndex(t *testing.T, name string) []int {
	f, ok := reflect.TypeOf(Entry{}).FieldByName(name)
	if !ok {
		t.Fatalf("Entry has no %s", name)
	}
	return f.Index
}
