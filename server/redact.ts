/** Secrets kept out of whatever the server and the swarm show: logs, /stats, stdout, error messages. */

/**
 * A URL fit to be shown (a log line, /stats, stdout, an error message): its password, if any, replaced by
 * `***`; a URL without one as given. Text that is not a URL but holds `user:password@` loses the
 * password the same way, so that a mistyped URL quoted back in an error does not print it either.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/(\/\/[^/@\s:]*):[^/@\s]*@/g, '$1:***@');
  }
  if (!parsed.password) return url;
  parsed.password = '***';
  return parsed.toString();
}
