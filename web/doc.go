// Package web serves Rescind's pages: the login and consent pages the authorization endpoint
// (package oauth, RFC 6749 §4.1) shows, and the "connected apps" page where a person sees the
// apps they granted access to and revokes one. It implements oauth.Pages; the route table in
// package oauth mounts its handlers.
//
// Pages are server-rendered from embedded templates and work without JavaScript. Sessions are
// cookies sealed under the server's secrets key (so every instance can read them); forms carry
// a CSRF token that must match a cookie (double submit). Cookies are HttpOnly, SameSite=Lax, and
// Secure when the issuer is https.
package web
