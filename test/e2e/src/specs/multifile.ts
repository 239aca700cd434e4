// Documented behaviour of test/fixtures/multifile v1..v3 (see its README.md).
import type { ProgramSpec } from './types';

export const multifileSpec: ProgramSpec = {
  program: 'multifile',
  versions: [
    {
      version: 'v1',
      stderrOnExit: 'multifile: bye',
      conversations: [
        {
          name: 'commands',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'multifile 1'],
            ['COUNT', '0'],
            ['LIST', '(empty)'],
            ['ADD pear', 'ADDED 1'],
            ['ADD apple', 'ADDED 2'],
            ['ADD fig', 'ADDED 3'],
            ['ADD apple', 'ADDED 4'],
            ['LIST', 'apple,apple,fig,pear'],
            ['COUNT', '4'],
          ],
        },
        {
          name: 'INFO shows both same-named static describe() functions',
          steps: [['INFO', 'commands=table dispatch; store=fixed array']],
        },
        {
          name: 'SHOUT',
          steps: [
            ['SHOUT hello world', 'HELLO WORLD'],
            ['SHOUT MiXeD 123', 'MIXED 123'],
            ['SHOUT', ''],
          ],
        },
        {
          name: 'errors',
          steps: [
            ['', 'ERR empty'],
            ['ADD', 'ERR bad word'],
            ['ADD a b', 'ERR bad word'],
            ['ADD xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'ERR bad word'],
            ['FOO', 'ERR unknown command'],
            ['PINGX', 'ERR unknown command'],
            ['ping', 'ERR unknown command'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'state is shared between connections',
          steps: [
            ['COUNT', '4'],
            ['LIST', 'apple,apple,fig,pear'],
          ],
        },
      ],
      load: {
        clients: 6,
        reconnectingClients: 2,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG' },
          { send: 'INFO', expect: 'commands=table dispatch; store=fixed array' },
          { send: 'SHOUT abc{c} x{i}', expect: 'ABC{c} X{i}' },
          { send: 'COUNT', expect: '0' },
          { send: 'LIST', expect: '(empty)' },
          { send: 'VERSION', expect: 'multifile 1' },
        ],
      },
    },
    {
      version: 'v2',
      stderrOnExit: 'multifile: bye',
      conversations: [
        {
          name: 'commands',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'multifile 2'],
            ['COUNT', '0'],
            ['LIST', '(empty)'],
            ['ADD pear', 'ADDED 1'],
            ['ADD apple', 'ADDED 2'],
            ['ADD fig', 'ADDED 3'],
            ['ADD apple', 'ADDED 4'],
            ['LIST', '4: apple,apple,fig,pear'],
            ['COUNT', '4'],
          ],
        },
        {
          name: 'INFO shows both same-named static describe() functions',
          steps: [['INFO', 'commands=table dispatch; store=sorted fixed array']],
        },
        {
          name: 'SHOUT',
          steps: [
            ['SHOUT hello world', 'HELLO WORLD'],
            ['SHOUT MiXeD 123', 'MIXED 123'],
            ['SHOUT', ''],
          ],
        },
        {
          name: 'errors',
          steps: [
            ['', 'ERR empty'],
            ['ADD', 'ERR bad word'],
            ['ADD a b', 'ERR bad word'],
            ['ADD xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'ERR bad word'],
            ['FOO', 'ERR unknown command'],
            ['PINGX', 'ERR unknown command'],
            ['ping', 'ERR unknown command'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'state is shared between connections',
          steps: [
            ['COUNT', '4'],
            ['LIST', '4: apple,apple,fig,pear'],
          ],
        },
      ],
      load: {
        clients: 6,
        reconnectingClients: 2,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG' },
          { send: 'INFO', expect: 'commands=table dispatch; store=sorted fixed array' },
          { send: 'SHOUT abc{c} x{i}', expect: 'ABC{c} X{i}' },
          { send: 'COUNT', expect: '0' },
          { send: 'LIST', expect: '(empty)' },
          { send: 'VERSION', expect: 'multifile 2' },
        ],
      },
    },
    {
      version: 'v3',
      stderrOnExit: 'multifile: bye',
      conversations: [
        {
          name: 'commands',
          steps: [
            ['PING', 'PONG'],
            ['VERSION', 'multifile 3'],
            ['COUNT', '0'],
            ['LIST', '(empty)'],
            ['ADD pear', 'ADDED 1'],
            ['ADD apple', 'ADDED 2'],
            ['ADD fig', 'ADDED 3'],
            ['ADD apple', 'ADDED 4'],
            ['LIST', '4: apple,apple,fig,pear'],
            ['COUNT', '4'],
          ],
        },
        {
          name: 'INFO shows both same-named static describe() functions',
          steps: [['INFO', 'commands=table dispatch; store=sorted fixed array']],
        },
        {
          name: 'SHOUT',
          steps: [
            ['SHOUT hello world', 'HELLO WORLD!'],
            ['SHOUT MiXeD 123', 'MIXED 123!'],
            ['SHOUT', '!'],
          ],
        },
        {
          name: 'errors',
          steps: [
            ['', 'ERR empty'],
            ['ADD', 'ERR bad word'],
            ['ADD a b', 'ERR bad word'],
            ['ADD xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'ERR bad word'],
            ['FOO', 'ERR unknown command'],
            ['PINGX', 'ERR unknown command'],
            ['ping', 'ERR unknown command'],
            ['PING\r', 'PONG'],
          ],
        },
        {
          name: 'state is shared between connections',
          steps: [
            ['COUNT', '4'],
            ['LIST', '4: apple,apple,fig,pear'],
          ],
        },
      ],
      load: {
        clients: 6,
        reconnectingClients: 2,
        requestsPerConnection: 5,
        durationMs: 2000,
        script: [
          { send: 'PING', expect: 'PONG' },
          { send: 'INFO', expect: 'commands=table dispatch; store=sorted fixed array' },
          { send: 'SHOUT abc{c} x{i}', expect: 'ABC{c} X{i}!' },
          { send: 'COUNT', expect: '0' },
          { send: 'LIST', expect: '(empty)' },
          { send: 'VERSION', expect: 'multifile 3' },
        ],
      },
    },
  ],
};
