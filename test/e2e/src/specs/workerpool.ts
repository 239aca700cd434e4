// Documented behaviour of test/fixtures/workerpool v1..v4 (see its README.md).
import type { ProgramSpec } from './types';

export const workerpoolSpec: ProgramSpec = {
  program: 'workerpool',
  versions: [
    {
      version: 'v1',
      conversations: [
        {
          name: 'commands',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'workerpool 1'],
            ['WORK 10', '17'],
            ['WORK 0', '0'],
            ['WORK 2', '0'],
            ['WORK 3', '2'],
            ['WORK 100', '1060'],
            ['WORK 100000', '454396537'],
            ['SLEEP 0', 'SLEPT 0'],
            ['SLEEP 20', 'SLEPT 20'],
            ['STATS', 'requests=11 work=6'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'errors',
          steps: [
            ['WORK -1', 'ERR bad argument'],
            ['WORK x', 'ERR bad argument'],
            ['WORK', 'ERR bad argument'],
            ['WORK 2000001', 'ERR bad argument'],
            ['SLEEP 10001', 'ERR bad argument'],
            ['', 'ERR empty'],
            ['FOO x', 'ERR unknown command'],
            ['AVERYLONGCOMMANDNAME', 'ERR unknown command'],
            ['STATS', 'requests=9 work=0'],
          ],
        },
        {
          name: 'STATS is per connection',
          steps: [
            ['STATS', 'requests=1 work=0'],
            ['WORK 10', '17'],
            ['STATS', 'requests=3 work=1'],
          ],
        },
      ],
      load: {
        clients: 3,
        reconnectingClients: 5,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG' },
          { send: 'WORK 1000', expect: '76127' },
          { send: 'STATS', expect: { regex: 'requests=\\d+ work=\\d+' } },
          { send: 'VERSION', expect: 'workerpool 1' },
          { send: 'SLEEP 1', expect: 'SLEPT 1' },
        ],
      },
    },
    {
      version: 'v2',
      conversations: [
        {
          name: 'commands (WORK and SLEEP replies reformatted)',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'workerpool 2'],
            ['WORK 10', 'sum of primes below 10 = 17'],
            ['WORK 0', 'sum of primes below 0 = 0'],
            ['WORK 2', 'sum of primes below 2 = 0'],
            ['WORK 3', 'sum of primes below 3 = 2'],
            ['WORK 100', 'sum of primes below 100 = 1060'],
            ['WORK 100000', 'sum of primes below 100000 = 454396537'],
            ['SLEEP 0', 'SLEPT 0ms'],
            ['SLEEP 20', 'SLEPT 20ms'],
            ['STATS', 'requests=11 work=6'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'errors (unknown commands are named)',
          steps: [
            ['WORK -1', 'ERR bad argument'],
            ['WORK x', 'ERR bad argument'],
            ['WORK', 'ERR bad argument'],
            ['WORK 2000001', 'ERR bad argument'],
            ['SLEEP 10001', 'ERR bad argument'],
            ['', 'ERR empty'],
            ['FOO x', 'ERR unknown command FOO'],
            ['AVERYLONGCOMMANDNAME', 'ERR unknown command'],
            ['STATS', 'requests=9 work=0'],
          ],
        },
        {
          name: 'STATS is per connection',
          steps: [
            ['STATS', 'requests=1 work=0'],
            ['WORK 10', 'sum of primes below 10 = 17'],
            ['STATS', 'requests=3 work=1'],
          ],
        },
      ],
      load: {
        clients: 3,
        reconnectingClients: 5,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG' },
          { send: 'WORK 1000', expect: 'sum of primes below 1000 = 76127' },
          { send: 'STATS', expect: { regex: 'requests=\\d+ work=\\d+' } },
          { send: 'VERSION', expect: 'workerpool 2' },
          { send: 'SLEEP 1', expect: 'SLEPT 1ms' },
        ],
      },
    },
    {
      version: 'v3',
      conversations: [
        {
          name: 'commands (PING answers PONG 3; WORK via the sieve, same replies)',
          steps: [
            ['PING', 'PONG 3'],
            ['VERSION', 'workerpool 3'],
            ['WORK 10', 'sum of primes below 10 = 17'],
            ['WORK 0', 'sum of primes below 0 = 0'],
            ['WORK 2', 'sum of primes below 2 = 0'],
            ['WORK 3', 'sum of primes below 3 = 2'],
            ['WORK 100', 'sum of primes below 100 = 1060'],
            ['WORK 100000', 'sum of primes below 100000 = 454396537'],
            ['SLEEP 0', 'SLEPT 0ms'],
            ['SLEEP 20', 'SLEPT 20ms'],
            ['STATS', 'requests=11 work=6'],
            ['PING\r', 'PONG 3'],
          ],
        },
        {
          name: 'errors',
          steps: [
            ['WORK -1', 'ERR bad argument'],
            ['WORK x', 'ERR bad argument'],
            ['WORK', 'ERR bad argument'],
            ['WORK 2000001', 'ERR bad argument'],
            ['SLEEP 10001', 'ERR bad argument'],
            ['', 'ERR empty'],
            ['FOO x', 'ERR unknown command FOO'],
            ['AVERYLONGCOMMANDNAME', 'ERR unknown command'],
            ['STATS', 'requests=9 work=0'],
          ],
        },
        {
          name: 'STATS is per connection',
          steps: [
            ['STATS', 'requests=1 work=0'],
            ['WORK 10', 'sum of primes below 10 = 17'],
            ['STATS', 'requests=3 work=1'],
          ],
        },
      ],
      load: {
        clients: 3,
        reconnectingClients: 5,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG 3' },
          { send: 'WORK 1000', expect: 'sum of primes below 1000 = 76127' },
          { send: 'STATS', expect: { regex: 'requests=\\d+ work=\\d+' } },
          { send: 'VERSION', expect: 'workerpool 3' },
          { send: 'SLEEP 1', expect: 'SLEPT 1ms' },
        ],
      },
    },
    {
      version: 'v4',
      conversations: [
        {
          name: 'commands (VERSION 4; WHO, checked under load, names the worker)',
          steps: [
            ['PING', 'PONG 3'],
            ['VERSION', 'workerpool 4'],
            ['WORK 10', 'sum of primes below 10 = 17'],
            ['SLEEP 20', 'SLEPT 20ms'],
            ['STATS', 'requests=5 work=1'],
          ],
        },
      ],
      load: {
        clients: 3,
        reconnectingClients: 5,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG 3' },
          { send: 'WORK 1000', expect: 'sum of primes below 1000 = 76127' },
          { send: 'WHO', expect: { regex: '^worker=[0-3] served=\\d+$' } },
          { send: 'VERSION', expect: 'workerpool 4' },
        ],
      },
    },
  ],
};
