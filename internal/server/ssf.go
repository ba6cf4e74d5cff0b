package server

import (
	"context"
	"fmt"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/ssf"
)

// The Shared Signals transmitter (package ssf): streams belong to the calling client, whose
// id the client-credentials middleware put in the context with its scopes checked.

// GetSSFConfiguration serves the transmitter configuration metadata.
func (h handlers) GetSSFConfiguration(context.Context, gen.GetSSFConfigurationRequestObject) (gen.GetSSFConfigurationResponseObject, error) {
	c := h.cfg.SSF.Configuration()
	schemes := make([]client.AuthorizationScheme, len(c.AuthorizationSchemes))
	for i, urn := range c.AuthorizationSchemes {
		schemes[i] = client.AuthorizationScheme{SpecUrn: urn}
	}
	return gen.GetSSFConfiguration200JSONResponse{
		SpecVersion: c.SpecVersion, Issuer: c.Issuer, JwksUri: c.JWKSURI,
		DeliveryMethodsSupported: c.DeliveryMethodsSupported, ConfigurationEndpoint: c.ConfigurationEndpoint,
		StatusEndpoint: c.StatusEndpoint, VerificationEndpoint: c.VerificationEndpoint,
		AuthorizationSchemes: schemes, DefaultSubjects: client.SSFConfigurationDefaultSubjects(c.DefaultSubjects),
	}, nil
}

// CreateStream creates a stream for the calling client.
func (h handlers) CreateStream(ctx context.Context, req gen.CreateStreamRequestObject) (gen.CreateStreamResponseObject, error) {
	b := req.Body
	st, err := h.cfg.SSF.CreateStream(ctx, callerClientID(ctx), streamInput(b.EventsRequested, b.Delivery, b.Description, b.Format))
	if err != nil {
		return nil, err
	}
	return gen.CreateStream201JSONResponse(toAPIStream(st)), nil
}

// GetStreams reads one stream of the calling client, or lists them.
func (h handlers) GetStreams(ctx context.Context, req gen.GetStreamsRequestObject) (gen.GetStreamsResponseObject, error) {
	var out client.StreamConfigurationOrList
	if id := req.Params.StreamId; id != nil {
		st, err := h.cfg.SSF.Stream(ctx, callerClientID(ctx), *id)
		if err != nil {
			return nil, err
		}
		if err := out.FromStreamConfiguration(toAPIStream(st)); err != nil {
			return nil, fmt.Errorf("stream configuration: %w", err)
		}
		return gen.GetStreams200JSONResponse(out), nil
	}
	sts, err := h.cfg.SSF.Streams(ctx, callerClientID(ctx))
	if err != nil {
		return nil, err
	}
	list := make([]client.StreamConfiguration, len(sts))
	for i, st := range sts {
		list[i] = toAPIStream(st)
	}
	if err := out.FromStreamConfigurationOrList1(list); err != nil {
		return nil, fmt.Errorf("stream configurations: %w", err)
	}
	return gen.GetStreams200JSONResponse(out), nil
}

// UpdateStream changes the members given.
func (h handlers) UpdateStream(ctx context.Context, req gen.UpdateStreamRequestObject) (gen.UpdateStreamResponseObject, error) {
	b := req.Body
	st, err := h.cfg.SSF.UpdateStream(ctx, callerClientID(ctx), b.StreamId, streamInput(b.EventsRequested, b.Delivery, b.Description, b.Format))
	if err != nil {
		return nil, err
	}
	return gen.UpdateStream200JSONResponse(toAPIStream(st)), nil
}

// ReplaceStream sets every receiver-supplied member.
func (h handlers) ReplaceStream(ctx context.Context, req gen.ReplaceStreamRequestObject) (gen.ReplaceStreamResponseObject, error) {
	b := req.Body
	st, err := h.cfg.SSF.ReplaceStream(ctx, callerClientID(ctx), b.StreamId, streamInput(b.EventsRequested, b.Delivery, b.Description, b.Format))
	if err != nil {
		return nil, err
	}
	return gen.ReplaceStream200JSONResponse(toAPIStream(st)), nil
}

// DeleteStream deletes a stream of the calling client.
func (h handlers) DeleteStream(ctx context.Context, req gen.DeleteStreamRequestObject) (gen.DeleteStreamResponseObject, error) {
	if err := h.cfg.SSF.DeleteStream(ctx, callerClientID(ctx), req.Params.StreamId); err != nil {
		return nil, err
	}
	return gen.DeleteStream204Response{}, nil
}

// GetStreamStatus reads a stream's status.
func (h handlers) GetStreamStatus(ctx context.Context, req gen.GetStreamStatusRequestObject) (gen.GetStreamStatusResponseObject, error) {
	st, err := h.cfg.SSF.StreamStatus(ctx, callerClientID(ctx), req.Params.StreamId)
	if err != nil {
		return nil, err
	}
	return gen.GetStreamStatus200JSONResponse(toAPIStatus(st)), nil
}

// UpdateStreamStatus sets a stream's status.
func (h handlers) UpdateStreamStatus(ctx context.Context, req gen.UpdateStreamStatusRequestObject) (gen.UpdateStreamStatusResponseObject, error) {
	b := req.Body
	reason := ""
	if b.Reason != nil {
		reason = *b.Reason
	}
	st, err := h.cfg.SSF.SetStreamStatus(ctx, callerClientID(ctx), b.StreamId, string(b.Status), reason)
	if err != nil {
		return nil, err
	}
	return gen.UpdateStreamStatus200JSONResponse(toAPIStatus(st)), nil
}

// VerifyStream queues a verification event.
func (h handlers) VerifyStream(ctx context.Context, req gen.VerifyStreamRequestObject) (gen.VerifyStreamResponseObject, error) {
	state := ""
	if req.Body.State != nil {
		state = *req.Body.State
	}
	if err := h.cfg.SSF.Verify(ctx, callerClientID(ctx), req.Body.StreamId, state); err != nil {
		return nil, err
	}
	return gen.VerifyStream204Response{}, nil
}

// PollStream serves an RFC 8936 poll.
func (h handlers) PollStream(ctx context.Context, req gen.PollStreamRequestObject) (gen.PollStreamResponseObject, error) {
	b := req.Body
	in := ssf.PollRequest{MaxEvents: b.MaxEvents}
	if b.ReturnImmediately != nil {
		in.ReturnImmediately = *b.ReturnImmediately
	}
	if b.Ack != nil {
		in.Ack = *b.Ack
	}
	if b.SetErrs != nil {
		in.SetErrs = make(map[string]ssf.SetError, len(*b.SetErrs))
		for jti, e := range *b.SetErrs {
			in.SetErrs[jti] = ssf.SetError{Err: e.Err, Description: e.Description}
		}
	}
	r, err := h.cfg.SSF.Poll(ctx, callerClientID(ctx), req.StreamId, in)
	if err != nil {
		return nil, err
	}
	return gen.PollStream200JSONResponse{Sets: r.Sets, MoreAvailable: r.MoreAvailable}, nil
}

func streamInput(events *[]string, d *client.StreamDelivery, description *string, format *client.SubjectFormat) ssf.StreamInput {
	in := ssf.StreamInput{EventsRequested: events, Description: description}
	if d != nil {
		in.Delivery = &ssf.Delivery{Method: string(d.Method)}
		if d.EndpointUrl != nil {
			in.Delivery.EndpointURL = *d.EndpointUrl
		}
		if d.AuthorizationHeader != nil {
			in.Delivery.AuthorizationHeader = *d.AuthorizationHeader
		}
	}
	if format != nil {
		f := string(*format)
		in.Format = &f
	}
	return in
}

func toAPIStream(st ssf.Stream) client.StreamConfiguration {
	endpoint := st.Delivery.EndpointURL
	return client.StreamConfiguration{
		StreamId: st.ID, Iss: st.Issuer, Aud: st.Audience, EventsSupported: st.EventsSupported,
		EventsRequested: st.EventsRequested, EventsDelivered: st.EventsDelivered,
		Delivery:    client.StreamDelivery{Method: client.StreamDeliveryMethod(st.Delivery.Method), EndpointUrl: &endpoint},
		Description: st.Description, Format: client.SubjectFormat(st.Format),
	}
}

func toAPIStatus(st ssf.Status) client.StreamStatus {
	out := client.StreamStatus{StreamId: st.StreamID, Status: client.StreamStatusStatus(st.Status)}
	if st.Reason != "" {
		out.Reason = &st.Reason
	}
	return out
}

// callerClientID is the id of the API client whose client token authorised the request; the
// middleware refuses SSF operations without one, so "" (which owns no stream) never reaches
// the transmitter from a request.
func callerClientID(ctx context.Context) string {
	p, _ := apiClientFromContext(ctx)
	return p.Client.ID
}
