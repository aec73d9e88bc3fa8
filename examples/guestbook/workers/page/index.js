// The guestbook's one page, served by an isolate worker: the HTML is an attachment the
// bundler inlines as text.
const html = require('./page.html');

module.exports = () => ({
  status: 200,
  headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
  body: html,
});
