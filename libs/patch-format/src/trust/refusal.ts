/**
 * Why a bundle is not applied (stable codes: `dsu apply --json` reports them as `refusal`):
 * - `not-checked`: no verdict.json (never `dsu check`ed)
 * - `stale-verdict`: the verdict is for another patch id
 * - `rejected`: the verdict is `rejected`
 * - `unsigned`: no signature.json
 * - `altered`: a covered file changed after signing (or patch.so no longer matches its manifest)
 * - `untrusted-key`: signed by a key the trust store does not hold
 * - `bad-signature`: the signature does not verify with the key it names
 * - `invalid-bundle`: not a readable bundle (missing files, links, manifest schema)
 * - `wrong-program` / `wrong-build`: made for another program or another running build
 */
export type RefusalCode =
  | 'not-checked'
  | 'stale-verdict'
  | 'rejected'
  | 'unsigned'
  | 'altered'
  | 'untrusted-key'
  | 'bad-signature'
  | 'invalid-bundle'
  | 'wrong-program'
  | 'wrong-build';

/** A bundle the applier refuses before touching the process; the message says what to do. */
export class BundleRefusal extends Error {
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'BundleRefusal';
  }
}
