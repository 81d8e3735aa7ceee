// Package web serves Rescind's pages: the sign-in page, the consent page and the error pages that
// the authorization endpoint (package oauth, RFC 6749 §4.1) shows, the "connected apps" page
// where a person sees the apps they granted access to and revokes one (which revokes the grant
// and every token of it), and the "sessions" page where they see where they are signed in and
// sign any session out, every other one, or every one. A Server implements oauth.Pages: the
// route table in package oauth mounts its handlers, and the authorization endpoint asks it who
// is signed in and has it show the consent page, then decides everything else itself.
//
// Pages are server-rendered from embedded templates and work without JavaScript. Sessions live
// on the server (Sessions): the browser's cookie holds a random 256-bit secret, the store only
// its SHA-256; every request that uses a session looks it up (a bounded memory cache, then the
// revocation state, which holds the sessions ended on any instance), so a session signed out,
// signed out everywhere, ended by an operator, by a new password or by the person's deletion is
// refused by every instance once the end is acknowledged. Sessions end after 12 hours unused
// and 30 days at most (SessionIdle, SessionMax). Forms carry a CSRF token bound to the session
// (an HMAC of its id under a key derived from the secrets key); a browser without a session (the
// sign-in form) gets a double-submit cookie instead. Cookies are HttpOnly, SameSite=Lax, Path=/
// and, when the issuer is https, Secure with the __Host- prefix. Failed sign-ins are
// rate-limited and logged with a hash of the username typed, never the text.
package web
