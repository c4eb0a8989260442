// The HTTP API under /api: JSON in and out, Bearer auth, errors as ApiError {status, code, message}.

const TOKEN_KEY = 'confab.token';
let token = localStorage.getItem(TOKEN_KEY);

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    /** Seconds to wait before trying again (429: too fast, or the channel's slow mode). */
    this.retryAfter = retryAfter;
  }
}

export const getToken = () => token;

export function setToken(t) {
  token = t;
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

/** One request; resolves to the parsed body (null for 204). */
export async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, -1, 'The server cannot be reached. Check your connection.');
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.code ?? -1, data?.message ?? `HTTP ${res.status}`, data?.retry_after ?? null);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);
export const put = (path, body) => api('PUT', path, body);

/** A multipart POST (files); the browser sets its Content-Type with the boundary. */
export async function upload(path, form) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let res;
  try {
    res = await fetch(`/api${path}`, { method: 'POST', headers, body: form });
  } catch {
    throw new ApiError(0, -1, 'The server cannot be reached. Check your connection.');
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.code ?? -1, data?.message ?? `HTTP ${res.status}`, data?.retry_after ?? null);
  return data;
}
