module.exports = async (msg) => ({ ok: true, n: msg.parameters.n ?? null });
