// Route templating: /users/123 and /users/456 aggregate as /users/{id}, keeping span names and
// metrics low-cardinality when no framework route is known.
const NUMERIC = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEXID = /^[0-9a-f]{16,}$/i;
const MIXED_ID = /^(?=.*\d)[A-Za-z0-9_-]{20,}$/;

// Paths repeat (every request to /users/7 …): remember the last few thousand templates instead of
// splitting and running four regexes per segment on every span.
const cache = new Map<string, string>();
const CACHE_MAX = 4096;

export function templateRoute(path: string): string {
  const hit = cache.get(path);
  if (hit !== undefined) return hit;
  const route = template(path);
  if (cache.size >= CACHE_MAX) cache.clear();
  if (path.length <= 512) cache.set(path, route);
  return route;
}

function template(path: string): string {
  if (path === '' || path === '/') return '/';
  const segs = path.split('/');
  let changed = false;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (!s) continue;
    // Only a numeric segment can be shorter than 16 (the shortest hex id): words skip three regexes.
    if (NUMERIC.test(s) || (s.length >= 16 && (UUID.test(s) || HEXID.test(s) || MIXED_ID.test(s)))) { segs[i] = '{id}'; changed = true; }
  }
  return changed ? segs.join('/') : path;
}
