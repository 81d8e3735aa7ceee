// Package web serves Rescind's pages: the sign-in page, the consent page and the error pages that
// the authorization endpoint (package oauth, RFC 6749 §4.1) shows, and the "connected apps" page
// where a person sees the apps they granted access to and revokes one (which revokes the grant
// and every token of it). A Server implements oauth.Pages: the route table in package oauth
// mounts its handlers, and the authorization endpoint asks it who is signed in and has it show
// the consent page, then decides everything else itself.
//
// Pages are server-rendered from embedded templates and work without JavaScript. Who is signed
// in is kept by a Sessions (by default a cookie sealed under the server's secrets key, so every
// instance can read it) and read through SignedIn alone, which also reads the user from the
// store. Forms carry a CSRF token that must match a cookie (double submit). Cookies are
// HttpOnly, SameSite=Lax, and Secure when the issuer is https. Failed sign-ins are rate-limited
// and logged with a hash of the username typed, never the text.
package web
