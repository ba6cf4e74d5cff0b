package server

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
)

const auditPath = "/api/v1/audit/"

// auditQueryParams names the query parameter of each member of audit.Query.
var auditQueryParams = map[audit.QueryMember]string{
	audit.MemberLimit: "limit", audit.MemberOffset: "offset", audit.MemberUserID: "user_id",
	audit.MemberActions: "action", audit.MemberUntil: "until",
}

// ListAuditEvents returns a page of the audit log, newest first, as the filters select.
func (h handlers) ListAuditEvents(ctx context.Context, req gen.ListAuditEventsRequestObject) (gen.ListAuditEventsResponseObject, error) {
	p := req.Params
	q := audit.Query{Limit: defaultPageSize}
	setIf(&q.Limit, p.Limit)
	setIf(&q.Offset, p.Offset)
	setIf(&q.UserID, p.UserId)
	setIf(&q.Since, p.Since)
	setIf(&q.Until, p.Until)
	if p.Action != nil {
		for _, a := range *p.Action {
			q.Actions = append(q.Actions, audit.Action(a))
		}
	}
	fields := map[string][]string{}
	for member, reason := range q.Check() {
		fields[auditQueryParams[member]] = []string{reason}
	}
	pageFields(fields, q.Limit, q.Offset)
	if len(fields) > 0 {
		return nil, errInvalid(fields)
	}
	events, total, err := audit.List(ctx, h.store, q)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	out := make([]client.AuditEvent, 0, len(events))
	for _, e := range events {
		out = append(out, toAPIAuditEvent(e))
	}
	resp := gen.ListAuditEvents200JSONResponse{Body: out, Headers: gen.ListAuditEvents200ResponseHeaders{XTotalCount: total}}
	resp.Headers.Link = nextPage(auditPath, len(events), q.Offset, q.Offset+int64(len(events)) < total, func(next int64) url.Values {
		return auditQuery(q, next)
	})
	return resp, nil
}

// auditQuery is q as query parameters, at offset.
func auditQuery(q audit.Query, offset int64) url.Values {
	v := url.Values{}
	v.Set("limit", strconv.Itoa(q.Limit))
	v.Set("offset", strconv.FormatInt(offset, 10))
	if q.UserID != 0 {
		v.Set("user_id", strconv.FormatInt(q.UserID, 10))
	}
	for _, a := range q.Actions {
		v.Add("action", string(a))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	return v
}

func toAPIAuditEvent(e store.AuditEvent) client.AuditEvent {
	out := client.AuditEvent{
		Id: e.ID, Time: e.At, Action: client.AuditAction(e.Action), Outcome: client.AuditOutcome(e.Outcome),
		Ip: e.IP, UserAgent: e.UserAgent, Fields: e.Fields, Count: max(e.Count, 1), FirstTime: e.FirstAt,
	}
	if e.FirstAt.IsZero() {
		out.FirstTime = e.At
	}
	if out.Fields == nil {
		out.Fields = []string{}
	}
	if e.ActorID != 0 {
		out.ActorId = &e.ActorID
	}
	if e.TargetID != 0 {
		out.TargetId = &e.TargetID
	}
	if e.SessionID != "" {
		out.SessionId = &e.SessionID
	}
	if e.KeyID != "" {
		out.KeyId = &e.KeyID
	}
	if e.ClientID != "" {
		out.ClientId = &e.ClientID
	}
	return out
}
