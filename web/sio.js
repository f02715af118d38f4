// A small Socket.IO v4 client (engine.io protocol 4, WebSocket transport only).
//
// Wire format, as the server speaks it:
//   engine.io:  "0{sid,pingInterval,pingTimeout,...}" open, "2" ping (we answer "3"),
//               "1" close, "4<socket.io packet>" message.
//   socket.io:  "0{auth}" connect → "0{sid}" or "4{message,data}" connect_error,
//               "2[name,payload]" event, "2<id>[name,payload]" event wanting an ack,
//               "3<id>[response]" ack, "1" disconnect.
//
// Usage (browser: window.SioClient; Node: require("web/sio.js") and pass a WebSocket
// class, e.g. the `ws` package's, as `new SioClient({ WebSocket })`):
//   const sio = new SioClient();
//   await sio.connect("http://host:3009", { token });     // rejects on connect_error
//   sio.on("participant-joined", (p) => ...);
//   const ack = await sio.emit("join-meeting", { roomId }); // { ok, data | error }
//   sio.close();
// No reconnection: "disconnect" is emitted once with a reason ("transport close", "ping
// timeout": the server's heartbeat stopped; "io server disconnect") and the caller decides.
(function (root) {
  "use strict";

  class SioError extends Error {
    constructor(message, data) {
      super(message);
      this.name = "SioError";
      this.data = data;
      // connect_error messages lead with their code: "TOKEN_EXPIRED: ...".
      const m = /^([A-Z][A-Z_]+):/.exec(message || "");
      this.code = m ? m[1] : (data && data.code) || "CONNECT_ERROR";
    }
  }

  class SioClient {
    constructor(options) {
      const opts = options || {};
      this.WebSocket = opts.WebSocket || root.WebSocket;
      this.ackTimeoutMs = opts.ackTimeoutMs || 10000;
      this.connectTimeoutMs = opts.connectTimeoutMs || 10000;
      this.handlers = new Map();
      this.acks = new Map();
      this.nextAckId = 0;
      this.ws = null;
      this.sid = null;
      this.connected = false;
      this.closed = false;
      this.pingTimer = null;
      this.pingDeadlineMs = 45000;
    }

    /** Socket.IO endpoint for an http(s) base URL. */
    static endpoint(baseUrl) {
      const u = new URL(baseUrl);
      const proto = u.protocol === "https:" ? "wss:" : "ws:";
      return `${proto}//${u.host}/socket.io/?EIO=4&transport=websocket`;
    }

    connect(baseUrl, auth) {
      if (this.ws) return Promise.reject(new Error("already connected"));
      return new Promise((resolve, reject) => {
        let settled = false;
        const settle = (err) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) {
            this._teardown();
            reject(err);
          } else {
            resolve(this);
          }
        };
        const timer = setTimeout(
          () => settle(new SioError("CONNECT_TIMEOUT: no answer from the signaling server")),
          this.connectTimeoutMs,
        );
        let ws;
        try {
          ws = new this.WebSocket(SioClient.endpoint(baseUrl));
        } catch (e) {
          settle(new SioError(`CONNECT_FAILED: ${e.message}`));
          return;
        }
        this.ws = ws;
        ws.onerror = () => {
          if (!this.connected) settle(new SioError("CONNECT_FAILED: the WebSocket could not be opened"));
        };
        ws.onclose = (ev) => {
          const wasConnected = this.connected;
          this._teardown();
          if (!settled) settle(new SioError(`CONNECT_FAILED: connection closed (${ev && ev.code})`));
          else if (wasConnected) this._fire("disconnect", "transport close");
        };
        ws.onmessage = (ev) => {
          const text = typeof ev.data === "string" ? ev.data : String(ev.data);
          this._onEnginePacket(text, auth, settle);
        };
      });
    }

    _onEnginePacket(text, auth, settle) {
      const type = text[0];
      const body = text.slice(1);
      switch (type) {
        case "0": {
          // engine.io open: start the socket.io handshake in the default namespace.
          let open = {};
          try {
            open = JSON.parse(body);
          } catch (_) {
            /* keep defaults */
          }
          if (open.pingInterval && open.pingTimeout) {
            this.pingDeadlineMs = open.pingInterval + open.pingTimeout;
          }
          this._armPingDeadline();
          this._send("40" + (auth ? JSON.stringify(auth) : ""));
          break;
        }
        case "2":
          this._armPingDeadline();
          this._send("3" + body);
          break;
        case "1":
          this.ws && this.ws.close();
          break;
        case "4":
          this._onSocketPacket(body, settle);
          break;
        default:
          break; // "3" pong, "6" noop: nothing to do
      }
    }

    _onSocketPacket(p, settle) {
      const type = p[0];
      let i = 1;
      // Namespace ("/nsp,"): we only use the default one.
      if (p[i] === "/") {
        const comma = p.indexOf(",", i);
        i = comma < 0 ? p.length : comma + 1;
      }
      let id = "";
      while (i < p.length && p[i] >= "0" && p[i] <= "9") id += p[i++];
      let data;
      if (i < p.length) {
        try {
          data = JSON.parse(p.slice(i));
        } catch (_) {
          return; // malformed packet: ignore it rather than die
        }
      }
      switch (type) {
        case "0":
          this.sid = data && data.sid;
          this.connected = true;
          settle(null);
          break;
        case "4":
          settle(new SioError((data && data.message) || "connect_error", data && data.data));
          break;
        case "1":
          this._fire("disconnect", "io server disconnect");
          this.connected = false;
          this.ws && this.ws.close();
          break;
        case "2": {
          if (!Array.isArray(data) || typeof data[0] !== "string") return;
          const [name, ...args] = data;
          const result = this._fire(name, ...args);
          if (id !== "") {
            Promise.resolve(result).then(
              (r) => this._send(`43${id}` + JSON.stringify(r === undefined ? [] : [r])),
              () => this._send(`43${id}[]`),
            );
          }
          break;
        }
        case "3": {
          const pending = this.acks.get(id);
          if (pending) {
            this.acks.delete(id);
            clearTimeout(pending.timer);
            pending.resolve(Array.isArray(data) ? data[0] : data);
          }
          break;
        }
        default:
          break;
      }
    }

    _fire(name, ...args) {
      const list = this.handlers.get(name);
      let result;
      if (list) {
        for (const fn of list.slice()) {
          try {
            const r = fn(...args);
            if (result === undefined) result = r;
          } catch (e) {
            if (typeof console !== "undefined") console.error(`handler for ${name} failed`, e);
          }
        }
      }
      return result;
    }

    _armPingDeadline() {
      clearTimeout(this.pingTimer);
      this.pingTimer = setTimeout(() => {
        // The connection is dead: give up on it now rather than wait for the WebSocket's
        // closing handshake, which cannot complete without the network.
        if (this._teardown()) this._fire("disconnect", "ping timeout");
      }, this.pingDeadlineMs);
    }

    _send(text) {
      if (this.ws && this.ws.readyState === 1) {
        this.ws.send(text);
        return true;
      }
      return false;
    }

    _teardown() {
      const wasConnected = this.connected;
      this.connected = false;
      clearTimeout(this.pingTimer);
      this.pingTimer = null;
      for (const [, pending] of this.acks) {
        clearTimeout(pending.timer);
        pending.reject(new SioError("DISCONNECTED: the connection closed before the answer"));
      }
      this.acks.clear();
      if (this.ws) {
        this.ws.onmessage = null;
        this.ws.onerror = null;
        this.ws.onclose = null;
        try {
          this.ws.close();
        } catch (_) {
          /* already closed */
        }
      }
      this.ws = null;
      return wasConnected;
    }

    on(name, fn) {
      if (!this.handlers.has(name)) this.handlers.set(name, []);
      this.handlers.get(name).push(fn);
      return this;
    }

    off(name, fn) {
      const list = this.handlers.get(name);
      if (list) this.handlers.set(name, fn ? list.filter((f) => f !== fn) : []);
      return this;
    }

    /** Emit an event and wait for its acknowledgement (rejects after the timeout). */
    emit(name, payload, timeoutMs) {
      return new Promise((resolve, reject) => {
        if (!this.connected) {
          reject(new SioError("DISCONNECTED: not connected"));
          return;
        }
        const id = String(this.nextAckId++);
        const timer = setTimeout(() => {
          this.acks.delete(id);
          reject(new SioError(`ACK_TIMEOUT: no answer to ${name}`));
        }, timeoutMs || this.ackTimeoutMs);
        this.acks.set(id, { resolve, reject, timer });
        const args = payload === undefined ? [name] : [name, payload];
        this._send(`42${id}` + JSON.stringify(args));
      });
    }

    /** Emit an event without asking for an acknowledgement. */
    send(name, payload) {
      const args = payload === undefined ? [name] : [name, payload];
      return this._send("42" + JSON.stringify(args));
    }

    /** Send a raw socket.io packet (tests use it for malformed input). */
    sendRaw(socketPacket) {
      return this._send("4" + socketPacket);
    }

    close() {
      if (this.closed) return;
      this.closed = true;
      if (this.connected) this._send("41");
      this._teardown();
    }
  }

  SioClient.SioError = SioError;
  if (typeof module !== "undefined" && module.exports) module.exports = SioClient;
  else root.SioClient = SioClient;
})(typeof window !== "undefined" ? window : globalThis);
