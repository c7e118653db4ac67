// What the console and host views share: a socket into a RoomState, and the refusal message.
import { ConsoleSocket } from "../socket.js";
import { RoomState } from "../state.js";
import { el, showError } from "../ui.js";

// Subscribe `onChange(part, envelope)` to a room's console stream; returns the socket.
export function follow(ctx, main, onChange) {
  const state = new RoomState();
  const socket = new ConsoleSocket({
    room: ctx.room,
    token: ctx.session.token,
    onStatus: ctx.setConnection,
    onRefused: (error) => {
      showError(error);
      main.replaceChildren(el("p", { class: "refused" }, `${error.error}: ${error.detail}`));
    },
    onMessage: (envelope) => onChange(state.apply(envelope) ?? envelope.type, envelope),
  });
  socket.connect();
  return { state, socket };
}
