import { spawn } from 'node:child_process';

/** A source location in clang's JSON AST (byte offsets into the `.i` buffer). */
export interface AstLoc {
  offset?: number;
  tokLen?: number;
  line?: number;
  col?: number;
  file?: string;
}

/** One node of clang's JSON AST (only the fields the front end reads are typed). */
export interface AstNode {
  id?: string;
  kind: string;
  loc?: AstLoc;
  range?: { begin: AstLoc; end: AstLoc };
  inner?: AstNode[];
  name?: string;
  type?: { qualType: string; desugaredQualType?: string; typeAliasDeclId?: string };
  isImplicit?: boolean;
  storageClass?: string;
  variadic?: boolean;
  inline?: boolean;
  tagUsed?: string;
  completeDefinition?: boolean;
  isBitfield?: boolean;
  opcode?: string;
  isArrow?: boolean;
  isPostfix?: boolean;
  castKind?: string;
  value?: string;
  argType?: { qualType: string; desugaredQualType?: string };
  referencedDecl?: { id: string; kind: string; name?: string; type?: { qualType: string } };
  referencedMemberDecl?: string;
  ownedTagDecl?: { id: string; kind: string; name?: string };
  previousDecl?: string;
  init?: string;
  valueCategory?: string;
  [key: string]: unknown;
}

/**
 * Splits clang's JSON AST dump, as it streams in, into the top-level declarations (the elements of
 * the TranslationUnitDecl's `inner` array) without ever holding the whole dump: a byte scanner
 * tracks string state and bracket nesting; each complete element is handed over as its own bytes.
 */
export class TopLevelSplitter {
  private depth = 0;
  private inString = false;
  private escape = false;
  private stack = new Uint8Array(256);
  private parts: Buffer[] = [];
  private collecting = false;
  /** Bytes seen so far. */
  bytes = 0;

  constructor(private readonly onElement: (element: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let start = this.collecting ? 0 : -1;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const b = chunk[i];
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (b === 0x5c) this.escape = true;
        else if (b === 0x22) this.inString = false;
        continue;
      }
      if (b === 0x22) {
        this.inString = true;
      } else if (b === 0x7b /* { */ || b === 0x5b /* [ */) {
        if (b === 0x7b && this.depth === 2 && this.stack[1] === 0x5b) {
          this.collecting = true;
          start = i;
        }
        if (this.depth >= this.stack.length) {
          const grown = new Uint8Array(this.stack.length * 2);
          grown.set(this.stack);
          this.stack = grown;
        }
        this.stack[this.depth++] = b;
      } else if (b === 0x7d || b === 0x5d) {
        this.depth--;
        if (this.collecting && this.depth === 2) {
          this.parts.push(chunk.subarray(start, i + 1));
          const element = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
          this.parts = [];
          this.collecting = false;
          start = -1;
          this.onElement(element);
        }
      }
    }
    if (this.collecting && start >= 0) this.parts.push(chunk.subarray(start));
  }

  end(): void {
    if (this.depth !== 0 || this.collecting) throw new Error('truncated JSON AST dump');
  }
}

export interface DumpOptions {
  clang: string;
  args: string[];
  cwd?: string;
  /** Dumps larger than this many bytes are decoded by the streaming path. Default 16 MiB. */
  streamThresholdBytes?: number;
  /** Always use the streaming path (tests, or when the caller knows the unit is large). */
  forceStreaming?: boolean;
  /**
   * Cheap pre-filter on a streamed element's top-level `loc.offset` (undefined when it has none):
   * returning false drops the element without parsing it.
   */
  wantOffset?: (offset: number | undefined) => boolean;
  /**
   * Receives each parsed top-level declaration that passes `wantOffset`, in source order. The
   * dump keeps nothing itself, so the callee decides what stays in memory.
   */
  onDecl: (decl: AstNode) => void;
  /** Path shown in error messages. */
  unitPath: string;
}

export interface DumpResult {
  /** Declarations handed to `onDecl`. */
  decls: number;
  mode: 'memory' | 'stream';
  astBytes: number;
  stderr: string;
}

const LOC_OFFSET = /"loc":\s*\{\s*"offset":\s*(\d+)/;

/**
 * Runs clang with `args` (which must produce the JSON AST on stdout) and returns the kept
 * top-level declarations. Small dumps are parsed in one piece; larger ones (or all, when forced)
 * go through {@link TopLevelSplitter} so that only kept declarations are ever materialized.
 */
export function dumpTopLevel(opts: DumpOptions): Promise<DumpResult> {
  // never buffer more than fits in one V8 string (~512 MiB)
  const threshold = Math.min(opts.streamThresholdBytes ?? 16 * 1024 * 1024, 2 ** 29 - 2 ** 20);
  return new Promise((resolve, reject) => {
    const child = spawn(opts.clang, opts.args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let decls = 0;
    let chunks: Buffer[] = [];
    let buffered = 0;
    let splitter: TopLevelSplitter | undefined;
    let failure: Error | undefined;
    const stderr: Buffer[] = [];
    let stderrBytes = 0;

    const onElement = (el: Buffer) => {
      if (opts.wantOffset) {
        const m = LOC_OFFSET.exec(el.toString('latin1', 0, Math.min(el.length, 512)));
        if (!opts.wantOffset(m ? Number(m[1]) : undefined)) return;
      }
      const decl = JSON.parse(el.toString('utf8')) as AstNode;
      decls++;
      opts.onDecl(decl);
    };
    const startStreaming = () => {
      splitter = new TopLevelSplitter(onElement);
      for (const c of chunks) splitter.push(c);
      chunks = [];
    };
    if (opts.forceStreaming) startStreaming();

    child.stdout.on('data', (chunk: Buffer) => {
      if (failure) return;
      try {
        if (splitter) {
          splitter.push(chunk);
          return;
        }
        chunks.push(chunk);
        buffered += chunk.length;
        if (buffered > threshold) startStreaming();
      } catch (e) {
        failure = e as Error;
        child.kill();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderrBytes < 1 << 20) stderr.push(chunk);
      stderrBytes += chunk.length;
    });
    child.on('error', (e) => reject(e));
    child.on('close', (code, signal) => {
      const err = Buffer.concat(stderr).toString('utf8');
      if (failure) return reject(failure);
      if (code !== 0) {
        return reject(
          new Error(
            `clang could not parse ${opts.unitPath} (exit ${code ?? signal}):\n${err.trim() || '(no diagnostics)'}`,
          ),
        );
      }
      try {
        if (splitter) {
          splitter.end();
          return resolve({ decls, mode: 'stream', astBytes: splitter.bytes, stderr: err });
        }
        const text = Buffer.concat(chunks).toString('utf8');
        chunks = [];
        const tu = JSON.parse(text) as AstNode;
        const inner = tu.inner ?? [];
        tu.inner = [];
        for (let i = 0; i < inner.length; i++) {
          const d = inner[i];
          inner[i] = undefined as unknown as AstNode; // let the decoded declaration go

          if (opts.wantOffset && !opts.wantOffset(d.loc?.offset)) continue;
          decls++;
          opts.onDecl(d);
        }
        resolve({ decls, mode: 'memory', astBytes: buffered, stderr: err });
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Runs a command to completion, collecting stdout as a Buffer; rejects with stderr on failure. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: Buffer; what: string },
): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => reject(e));
    if (opts.input && child.stdin) child.stdin.end(opts.input);
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8');
      if (code !== 0) {
        reject(
          new Error(`${opts.what} failed (exit ${code ?? signal}):\n${stderr.trim() || '(no diagnostics)'}`),
        );
      } else resolve({ stdout: Buffer.concat(out), stderr });
    });
  });
}
