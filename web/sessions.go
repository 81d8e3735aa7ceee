package web

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/secret"
)

// sessionRow is one line of the sessions page.
type sessionRow struct {
	ID                 string
	Current            bool
	Newer              bool // signed in after this session: ending it needs the password
	Created, LastSeen  time.Time
	UserAgent, Address string
}

// logoutRow is one app told of the end of one of the person's sessions (back-channel logout).
type logoutRow struct {
	App    string
	At     time.Time
	Status string // "signed out", "pending" or "failed"
}

// recentLogouts lists the latest back-channel logouts about user: per app, whether it was
// signed out (its receiver acknowledged the logout token), is still being told, or could not
// be. Finished ones are listed until the outbox's retention purges them.
func (s *Server) recentLogouts(r *http.Request, userID string) []logoutRow {
	msgs, err := s.cfg.Store.ListOutbox(r.Context(), rescind.OutboxFilter{Kind: rescind.OutboxKindBackchannelLogout, Subject: userID, Limit: 20})
	if err != nil {
		s.cfg.Logger.WarnContext(r.Context(), "listing logouts", "err", err)
		return nil
	}
	var rows []logoutRow
	for _, m := range msgs {
		name := m.Key
		if c, err := s.cfg.Clients.Get(r.Context(), m.Key); err == nil {
			name = c.Name
		}
		status := "pending"
		switch m.State {
		case rescind.OutboxDelivered:
			status = "signed out"
		case rescind.OutboxFailed:
			status = "failed"
		}
		rows = append(rows, logoutRow{App: name, At: m.CreatedAt, Status: status})
	}
	return rows
}

// HandleSessions serves GET /account/sessions: the person's signed-in sessions (this one
// marked and first), with when each started and was last used, its browser and address, a
// "Sign out" button for each, "Sign out of other sessions" and "Sign out everywhere".
func (s *Server) HandleSessions(w http.ResponseWriter, r *http.Request) {
	sess, user, ok := s.sessions.Current(r)
	if !ok {
		http.Redirect(w, r, "/login?next=%2Faccount%2Fsessions", http.StatusSeeOther)
		return
	}
	list, err := s.sessions.List(r.Context(), user.ID)
	if err != nil {
		s.serverError(w, r, "listing sessions", err)
		return
	}
	rows := make([]sessionRow, 0, len(list))
	newerOthers := false
	for _, l := range list {
		if s.cfg.Committer.SessionEnded(l.ID) {
			continue
		}
		row := sessionRow{ID: l.ID, Current: l.ID == sess.ID, Newer: l.ID != sess.ID && newer(l, sess), Created: l.CreatedAt,
			LastSeen: l.LastSeenAt, UserAgent: l.UserAgent, Address: l.Address}
		newerOthers = newerOthers || row.Newer
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Current != rows[j].Current {
			return rows[i].Current
		}
		return rows[i].Created.After(rows[j].Created)
	})
	s.render(w, http.StatusOK, "sessions.html", map[string]any{"Title": "Your sessions", "Username": user.Username,
		"Sessions": rows, "Others": len(rows) > 1, "NewerOthers": newerOthers, "CSRF": s.csrfToken(w, r),
		"Logouts": s.recentLogouts(r, user.ID)})
}

// newer reports whether session o signed in after sess.
func newer(o, sess rescind.Session) bool {
	return o.CreatedAt.After(sess.CreatedAt)
}

// needsPassword reports whether ending the sessions f matches, from session sess, needs the
// person's password: when it ends a session that signed in after sess, but not sess itself.
// Someone holding only a copy of a cookie can end older sessions and every session (their copy
// too, once), but not keep the person out of a browser where they signed in again.
func (s *Server) needsPassword(r *http.Request, sess rescind.Session, f rescind.SessionFilter) (bool, error) {
	if f.ID == sess.ID || (f.ID == "" && f.ExceptID == "") {
		return false, nil
	}
	list, err := s.sessions.List(r.Context(), sess.UserID)
	if err != nil {
		return false, err
	}
	for _, o := range list {
		if o.ID != sess.ID && (f.ID == "" || o.ID == f.ID) && newer(o, sess) {
			return true, nil
		}
	}
	return false, nil
}

// checkPassword reports whether the parsed form carries the password of user, as a login would
// check it (rate-limited the same way: a wrong one is a failed login); if not, it has answered.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, user rescind.User) bool {
	password, err := formValue(r, "password")
	if err != nil || password == "" {
		s.renderError(w, http.StatusForbidden, "Enter your password to sign out a session that signed in after this one.")
		return false
	}
	res, ok, retry := s.reserveLogin(r, user.Username)
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry/time.Second))))
		s.renderError(w, http.StatusTooManyRequests, "Too many failed attempts. Wait a little and try again.")
		return false
	}
	_, err = s.cfg.Users.Authenticate(secret.WithClaimant(r.Context(), clientip.Network(r.RemoteAddr)), user.Username, password)
	if errors.Is(err, ErrBadCredentials) {
		s.loginFailed(res)
		s.cfg.Logger.WarnContext(r.Context(), "failed password confirmation", "user", user.Username, "remote", r.RemoteAddr)
		s.renderError(w, http.StatusForbidden, "Wrong password. Go back to your sessions and try again.")
		return false
	}
	res.refund()
	if errors.Is(err, secret.ErrShareInUse) {
		w.Header().Set("Retry-After", "1")
		s.renderError(w, http.StatusTooManyRequests, "Too many attempts at once. Wait a little and try again.")
		return false
	}
	if errors.Is(err, secret.ErrBusy) {
		w.Header().Set("Retry-After", "1")
		s.renderError(w, http.StatusServiceUnavailable, "The server is busy. Try again in a moment.")
		return false
	}
	if err != nil && r.Context().Err() != nil {
		s.cfg.Logger.DebugContext(r.Context(), "password confirmation abandoned by the client", "remote", r.RemoteAddr, "err", err)
		return false
	}
	if err != nil {
		s.serverError(w, r, "confirming password", err)
		return false
	}
	return true
}

// endSessions serves the sign-out forms of the sessions page: the person must be signed in
// and the form carry their session's CSRF token; which(sess) says which of their sessions to
// end. A person who ended the session they are using goes to the login page, anyone else back
// to the sessions page.
func (s *Server) endSessions(w http.ResponseWriter, r *http.Request, reason string, which func(r *http.Request, sess rescind.Session) (rescind.SessionFilter, bool)) {
	if err := parsePost(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	sess, user, ok := s.sessions.Current(r)
	if !ok {
		http.Redirect(w, r, "/login?next=%2Faccount%2Fsessions", http.StatusSeeOther)
		return
	}
	if !s.checkCSRF(r) {
		s.renderError(w, http.StatusForbidden, "This form has expired. Go back to your sessions and try again.")
		return
	}
	f, ok := which(r, sess)
	if !ok {
		s.renderError(w, http.StatusBadRequest, "No session was chosen.")
		return
	}
	f.UserID = user.ID // the person's own sessions, whatever the form says
	need, err := s.needsPassword(r, sess, f)
	if err != nil {
		s.serverError(w, r, "listing sessions", err)
		return
	}
	if need {
		if !s.checkPassword(w, r, user) {
			return
		}
	} else if f.ID != "" || f.ExceptID != "" {
		// Without the password: this session and older ones only, decided by the statement
		// that ends them (a session signed in since the list above is spared), and without
		// moving the epoch, so a copy of this cookie pressing it again and again neither ends
		// nor blocks the person's sign-ins elsewhere.
		f.SignedInBy = sess.CreatedAt
	}
	if f.ID == "" && f.ExceptID == "" {
		f.ForgetDevices = true // "Sign out everywhere": no browser is remembered any more
	}
	n, err := s.sessions.End(r.Context(), f, "user:"+user.Username, reason)
	if err != nil {
		s.serverError(w, r, "ending sessions", err)
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "sessions ended by their user", "user", user.Username, "sessions", n, "reason", reason)
	if f.ExceptID != sess.ID && (f.ID == "" || f.ID == sess.ID) {
		s.sessions.ClearCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account/sessions", http.StatusSeeOther)
}

// HandleEndSession serves POST /account/sessions/end: the person signs one of their sessions
// out (field session_id; with the field password if it signed in after this one); another
// person's session id changes nothing.
func (s *Server) HandleEndSession(w http.ResponseWriter, r *http.Request) {
	s.endSessions(w, r, "signed out a session", func(r *http.Request, _ rescind.Session) (rescind.SessionFilter, bool) {
		id, err := formValue(r, "session_id")
		return rescind.SessionFilter{ID: id}, err == nil && id != ""
	})
}

// HandleEndOtherSessions serves POST /account/sessions/end-others: every session of the
// person but this one ends (with the field password if one of them signed in after this one).
func (s *Server) HandleEndOtherSessions(w http.ResponseWriter, r *http.Request) {
	s.endSessions(w, r, "signed out of other sessions", func(_ *http.Request, sess rescind.Session) (rescind.SessionFilter, bool) {
		return rescind.SessionFilter{ExceptID: sess.ID}, true
	})
}

// HandleEndAllSessions serves POST /account/sessions/end-all ("Sign out everywhere"): every
// session of the person ends, this one too.
func (s *Server) HandleEndAllSessions(w http.ResponseWriter, r *http.Request) {
	s.endSessions(w, r, "signed out everywhere", func(*http.Request, rescind.Session) (rescind.SessionFilter, bool) {
		return rescind.SessionFilter{}, true
	})
}
