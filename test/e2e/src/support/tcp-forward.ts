// A TCP port that refuses connections until `open()`, then forwards each to a target: stands
// for a server (PostgreSQL, a Kafka broker's bootstrap address) that comes up after its clients.
import * as net from 'node:net';

export interface LateServer {
  port: number;
  /** Starts accepting on `port` and forwarding to `target` (host:port). */
  open(target: string): Promise<void>;
  close(): Promise<void>;
}

export function lateServer(port: number): LateServer {
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  return {
    port,
    open: (target) =>
      new Promise((resolve, reject) => {
        const [host, p] = target.split(':');
        server = net.createServer((client) => {
          const upstream = net.connect(Number(p), host);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
            s.on('error', () => (client.destroy(), upstream.destroy()));
          }
          client.pipe(upstream).pipe(client);
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server) return resolve();
        server.close(() => resolve());
      }),
  };
}
