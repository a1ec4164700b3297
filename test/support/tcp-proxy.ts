import { connect, createServer, type Socket } from "node:net";

/**
 * A TCP proxy in front of a real service (Temporal), for a test to cut one process off it without
 * touching the service itself: hold() stops every byte both ways (connections stay open, as with a
 * network that stopped answering), release() lets them through, dropAll() discards what was held
 * and closes every connection (what a killed process had in flight never arrives).
 */
export interface TcpProxy {
  port: number;
  hold(): void;
  release(): void;
  dropAll(): void;
  close(): Promise<void>;
}

interface Leg {
  from: Socket;
  to: Socket;
  held: Buffer[];
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let holding = false;
  const legs = new Set<Leg>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    const pair = [
      { from: client, to: upstream, held: [] as Buffer[] },
      { from: upstream, to: client, held: [] as Buffer[] },
    ];
    for (const leg of pair) {
      legs.add(leg);
      leg.from.on("data", (chunk: Buffer) => (holding ? leg.held.push(chunk) : leg.to.write(chunk)));
      leg.from.on("close", () => {
        legs.delete(leg);
        leg.to.destroy();
      });
      leg.from.on("error", () => leg.to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const leg of legs) for (const chunk of leg.held.splice(0)) leg.to.write(chunk);
    },
    dropAll: () => {
      for (const leg of legs) {
        leg.held.length = 0;
        leg.from.destroy();
        leg.to.destroy();
      }
    },
    close: async () => {
      for (const leg of legs) leg.from.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
