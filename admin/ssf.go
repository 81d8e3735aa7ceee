package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/rescind/rescind"
)

// SSFStreamInfo describes a Shared Signals stream (package ssf) for the operator. It never
// holds the receiver's push Authorization header.
type SSFStreamInfo struct {
	StreamID        string    `json:"stream_id"`
	ClientID        string    `json:"client_id"`
	Description     string    `json:"description,omitempty"`
	DeliveryMethod  string    `json:"delivery_method"`
	EndpointURL     string    `json:"endpoint_url,omitempty"`
	Status          string    `json:"status"`
	StatusReason    string    `json:"status_reason,omitempty"`
	EventsRequested []string  `json:"events_requested"`
	EventsDelivered []string  `json:"events_delivered"`
	DefaultSubjects string    `json:"default_subjects"`
	Subjects        int64     `json:"subjects"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// SSFStreamDeleted is the answer to deleting a stream.
type SSFStreamDeleted struct {
	StreamID string `json:"stream_id"`
	Deleted  bool   `json:"deleted"`
}

// handleListSSFStreams lists every Shared Signals stream, of every receiver.
func (s *Server) handleListSSFStreams(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Store.ListSSFStreams(r.Context(), "")
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "listing streams", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the streams could not be read")
		return
	}
	out := make([]SSFStreamInfo, 0, len(list))
	for _, st := range list {
		n, err := s.cfg.Store.CountSSFSubjects(r.Context(), st.ID)
		if err != nil {
			s.cfg.Logger.ErrorContext(r.Context(), "counting subjects", "err", err)
			writeErr(w, http.StatusInternalServerError, "server_error", "the streams could not be read")
			return
		}
		def := "NONE"
		if st.AllSubjects {
			def = "ALL"
		}
		req := st.EventsRequested
		if req == nil {
			req = []string{}
		}
		out = append(out, SSFStreamInfo{StreamID: st.ID, ClientID: st.ClientID, Description: st.Description,
			DeliveryMethod: st.Method, EndpointURL: st.EndpointURL, Status: string(st.Status), StatusReason: st.StatusReason,
			EventsRequested: req, EventsDelivered: st.EventsDelivered, DefaultSubjects: def, Subjects: n,
			CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDeleteSSFStream deletes a stream, its subjects and the events it holds, and audits it.
func (s *Server) handleDeleteSSFStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.cfg.Store.DeleteSSFStream(r.Context(), id)
	if errors.Is(err, rescind.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "not_found", "no stream "+id)
		return
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "deleting a stream", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the stream could not be deleted")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "Shared Signals stream deleted", "stream_id", id)
	writeJSON(w, http.StatusOK, SSFStreamDeleted{StreamID: id, Deleted: true})
}

// SSFStreams lists every Shared Signals stream.
func (c *Client) SSFStreams(ctx context.Context) ([]SSFStreamInfo, error) {
	var out []SSFStreamInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/ssf/streams", nil, &out)
	return out, err
}

// DeleteSSFStream deletes a Shared Signals stream.
func (c *Client) DeleteSSFStream(ctx context.Context, id string) (SSFStreamDeleted, error) {
	var out SSFStreamDeleted
	err := c.do(ctx, http.MethodDelete, "/admin/v1/ssf/streams/"+url.PathEscape(id), nil, &out)
	return out, err
}
