// Package web serves Rescind's pages: the authorization endpoint of RFC 6749 §4.1 (with PKCE,
// RFC 7636) and the login and consent pages it shows, and the "connected apps" page where a
// person sees the apps they granted access to and revokes one.
//
// Pages are server-rendered from embedded templates and work without JavaScript. Sessions are
// cookies sealed under the server's secrets key (so every instance can read them); forms carry
// a CSRF token that must match a cookie (double submit). Cookies are HttpOnly, SameSite=Lax, and
// Secure when the issuer is https.
package web
