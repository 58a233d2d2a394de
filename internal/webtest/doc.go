// Package webtest holds the browser tests of the console (internal/web):
// headless Chromium driven with chromedp against a server running in the
// test process, logged in as each party. It has no code outside its tests.
package webtest
