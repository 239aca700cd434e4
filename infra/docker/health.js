#!/usr/bin/env node
// Container health check: GET /health of the service running in this container; exit 0 when it
// answers 200. The port is the first DSU_<SERVICE>_PORT set (compose and the manifests set exactly
// one), else argv[2], else the gateway's 7400. HTTPS when DSU_TLS_CERT is set (a self-signed or
// private-CA certificate is accepted: this checks liveness, not identity).
'use strict';
const portVar = Object.keys(process.env).find((k) => /^DSU_[A-Z]+_PORT$/.test(k));
const port = Number(process.argv[2] || (portVar && process.env[portVar]) || 7400);
const tls = !!process.env.DSU_TLS_CERT;
const client = require(tls ? 'node:https' : 'node:http');
const req = client.get(
  { host: '127.0.0.1', port, path: '/health', timeout: 4000, rejectUnauthorized: false },
  (res) => {
    res.resume();
    if (res.statusCode !== 200) console.error(`health: /health on port ${port} answered ${res.statusCode}`);
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error('no answer within 4 s')));
req.on('error', (err) => {
  console.error(`health: /health on port ${port}: ${err.message}`);
  process.exit(1);
});
