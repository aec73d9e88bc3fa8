module.exports = (msg) => ({ ok: true, n: msg.parameters.n ?? null });
