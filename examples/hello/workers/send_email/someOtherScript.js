exports.compose = (from, to) => ({ from, to, subject: 'Hello from LivelyCouch' });
