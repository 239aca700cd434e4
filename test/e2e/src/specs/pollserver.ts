// Documented behaviour of test/fixtures/pollserver v1..v3 (see its README.md).
import type { ProgramSpec } from './types';

export const pollserverSpec: ProgramSpec = {
  program: 'pollserver',
  versions: [
    {
      version: 'v1',
      conversations: [
        {
          name: 'commands',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'pollserver 1'],
            ['COUNT', '0'],
            ['GET alpha', 'NOT_FOUND'],
            ['SET alpha 1', 'OK'],
            ['SET beta two words', 'OK'],
            ['GET alpha', '1'],
            ['GET beta', 'two words'],
            ['COUNT', '2'],
            ['SET alpha 3', 'OK'],
            ['GET alpha', '3'],
            ['COUNT', '2'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'errors (ECHO does not exist yet)',
          steps: [
            ['ECHO hello', 'ERR unknown command'],
            ['', 'ERR empty'],
            ['SET x', 'ERR usage: SET key value'],
            ['GET', 'ERR usage: GET key'],
            ['GET a b', 'ERR usage: GET key'],
            ['FOO', 'ERR unknown command'],
          ],
        },
        {
          name: 'state is shared between connections',
          steps: [
            ['GET alpha', '3'],
            ['COUNT', '2'],
            ['GET gamma', 'NOT_FOUND'],
          ],
        },
      ],
      load: {
        clients: 6,
        reconnectingClients: 2,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'SET k{c} v{c}', expect: 'OK' },
          { send: 'GET k{c}', expect: 'v{c}' },
          { send: 'PING', expect: 'PONG' },
          { send: 'COUNT', expect: { regex: '\\d+' } },
          { send: 'VERSION', expect: 'pollserver 1' },
          { send: 'GET missing{c}', expect: 'NOT_FOUND' },
        ],
      },
    },
    {
      version: 'v2',
      conversations: [
        {
          name: 'commands (GET on a missing key names it)',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'pollserver 2'],
            ['COUNT', '0'],
            ['GET alpha', 'NOT_FOUND alpha'],
            ['SET alpha 1', 'OK'],
            ['SET beta two words', 'OK'],
            ['GET alpha', '1'],
            ['GET beta', 'two words'],
            ['COUNT', '2'],
            ['SET alpha 3', 'OK'],
            ['GET alpha', '3'],
            ['COUNT', '2'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'ECHO (new) and errors',
          steps: [
            ['ECHO hello', 'hello'],
            ['ECHO two words', 'two words'],
            ['', 'ERR empty'],
            ['SET x', 'ERR usage: SET key value'],
            ['GET', 'ERR usage: GET key'],
            ['GET a b', 'ERR usage: GET key'],
            ['FOO', 'ERR unknown command'],
          ],
        },
        {
          name: 'state is shared between connections',
          steps: [
            ['GET alpha', '3'],
            ['COUNT', '2'],
            ['GET gamma', 'NOT_FOUND gamma'],
          ],
        },
      ],
      load: {
        clients: 6,
        reconnectingClients: 2,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'SET k{c} v{c}', expect: 'OK' },
          { send: 'GET k{c}', expect: 'v{c}' },
          { send: 'PING', expect: 'PONG' },
          { send: 'ECHO e{c}.{i}', expect: 'e{c}.{i}' },
          { send: 'COUNT', expect: { regex: '\\d+' } },
          { send: 'VERSION', expect: 'pollserver 2' },
          { send: 'GET missing{c}', expect: 'NOT_FOUND missing{c}' },
        ],
      },
    },
    {
      version: 'v3',
      conversations: [
        {
          name: 'commands (PING answers PONG 3)',
          steps: [
            ['PING', 'PONG 3'],
            ['VERSION', 'pollserver 3'],
            ['COUNT', '0'],
            ['GET alpha', 'NOT_FOUND alpha'],
            ['SET alpha 1', 'OK'],
            ['SET beta two words', 'OK'],
            ['GET alpha', '1'],
            ['GET beta', 'two words'],
            ['COUNT', '2'],
            ['SET alpha 3', 'OK'],
            ['GET alpha', '3'],
            ['COUNT', '2'],
            ['PING\r', 'PONG 3'],
          ],
        },
        {
          name: 'ECHO and errors',
          steps: [
            ['ECHO hello', 'hello'],
            ['ECHO two words', 'two words'],
            ['', 'ERR empty'],
            ['SET x', 'ERR usage: SET key value'],
            ['GET', 'ERR usage: GET key'],
            ['GET a b', 'ERR usage: GET key'],
            ['FOO', 'ERR unknown command'],
          ],
        },
        {
          name: 'state is shared between connections',
          steps: [
            ['GET alpha', '3'],
            ['COUNT', '2'],
            ['GET gamma', 'NOT_FOUND gamma'],
          ],
        },
      ],
      load: {
        clients: 6,
        reconnectingClients: 2,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'SET k{c} v{c}', expect: 'OK' },
          { send: 'GET k{c}', expect: 'v{c}' },
          { send: 'PING', expect: 'PONG 3' },
          { send: 'ECHO e{c}.{i}', expect: 'e{c}.{i}' },
          { send: 'COUNT', expect: { regex: '\\d+' } },
          { send: 'VERSION', expect: 'pollserver 3' },
          { send: 'GET missing{c}', expect: 'NOT_FOUND missing{c}' },
        ],
      },
    },
  ],
};
