/** Loggers for specs that check what a part logs. */
import { silentLogger, type Logger } from '../../src/shared/logger.ts';

/** A logger that says nothing and keeps the message of every warning it is given in `warnings`. */
export const warningsKept = (warnings: string[]): Logger => ({ ...silentLogger, warn: (msg: string) => { warnings.push(msg); } });
