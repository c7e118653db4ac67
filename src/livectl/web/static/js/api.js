// REST calls with the session's token. Failures come back as {error, detail} (the API's own
// shape, or one made here for a network failure) so every caller can show them the same way.
import { token } from "./auth.js";
import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(`${error}: ${detail}`);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", t("err.network"));
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(
      response.status,
      payload?.error ?? `http_${response.status}`,
      payload?.detail ?? response.statusText,
    );
  }
  return payload;
}

export const roomPath = (room, rest = "") => `/v1/rooms/${encodeURIComponent(room)}${rest}`;
