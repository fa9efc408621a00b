// Forwards every push (its decrypted text) and subscription change to the harness.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
const report = (what, body) =>
  fetch('/report/' + what, {method: 'POST', body: JSON.stringify(body)});
self.addEventListener('push', e => {
  e.waitUntil(report('push', {text: e.data ? e.data.text() : null, at: Date.now()}));
});
self.addEventListener('pushsubscriptionchange', e => {
  e.waitUntil(report('pushsubscriptionchange', {at: Date.now()}));
});
