/**
 * Hugging Face hub ids, `owner/name[@revision]`, and the URL of a file in a hub repository: what
 * the hub cache on disk (hub.ts, Node only) and the browser's hub download (hub-web.ts) share.
 */

export interface HubId {
  owner: string;
  name: string;
  revision?: string;
}

/** The hub's address when neither an option nor `HF_ENDPOINT` names another one. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_HUB_REVISION = 'main';

// Hub naming rules: letters, digits, '-', '_', '.'; no leading '-'/'.', no '--' or '..'.
const REPO_PART = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$/;
const REVISION = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/** `owner/name` or `owner/name@revision` per the hub's naming rules; undefined otherwise. */
export function parseHubId(s: string): HubId | undefined {
  const at = s.indexOf('@');
  const repo = at < 0 ? s : s.slice(0, at);
  const revision = at < 0 ? undefined : s.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2) return undefined;
  const [owner, name] = parts as [string, string];
  for (const part of parts) {
    if (!REPO_PART.test(part) || part.includes('--') || part.includes('..')) return undefined;
  }
  if (revision !== undefined && !isSafeRevision(revision)) return undefined;
  return { owner, name, revision };
}

/** A branch, tag or commit that names no folder outside its own ('.', '..'). */
export function isSafeRevision(revision: string): boolean {
  return REVISION.test(revision) && !revision.split('/').some((part) => part === '.' || part === '..');
}

/** `${endpoint}/{owner}/{name}/resolve/{revision}/{file}`, the URL the hub serves a file at. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
}
