const { serve } = require('livelycouch/worker');
serve((msg) => ({ ok: true, n: msg.parameters.n ?? null }));
