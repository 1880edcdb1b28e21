/**
 * Limits the wire contract states and the config enforces, in a module without imports: the config
 * (loaded by every command, `mediary --help` included) reads them without loading TypeBox.
 */

/** The longest overlap a key rotation may ask for (30 days): the replaced key works until then. */
export const MAX_KEY_OVERLAP_SECONDS = 30 * 24 * 3600;
