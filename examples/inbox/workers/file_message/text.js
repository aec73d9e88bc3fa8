// A module of the worker: every file of the folder is an attachment, required by its name.
exports.cleanText = (t) => (typeof t === 'string' ? t.replace(/\s+/g, ' ').trim().slice(0, 2000) : '');
