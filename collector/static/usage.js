/*! usage.js: send product usage to the usage collector. No dependencies; never throws. */
(function (global) {
  "use strict";

  var MAX_BATCH = 50;
  var MAX_QUEUE = 1000;
  var FIRST_RETRY_MS = 1000;
  var MAX_RETRY_MS = 30000;

  var config = null;
  var account = null;
  var user = null;
  var queue = [];
  var timer = null;
  var retryMs = FIRST_RETRY_MS;
  var inFlight = 0; // events in the request under way
  var lastHeartbeat = 0;

  function guard(fn) {
    // Whatever goes wrong here must never reach the host page.
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (error) {
        if (global.console && console.debug) console.debug("usage.js:", error);
      }
    };
  }

  function randomId() {
    if (global.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function endpoint(path) {
    return config.collectorUrl.replace(/\/+$/, "") + path;
  }

  function enqueue(event) {
    if (queue.length >= MAX_QUEUE) queue.shift(); // keep memory bounded while offline
    queue.push(event);
    schedule(config.flushIntervalMs);
  }

  function baseEvent() {
    var event = { service_id: config.serviceId, account_id: account.id, event_id: randomId() };
    if (user && user.id) event.user_id = user.id;
    event.timestamp = new Date().toISOString();
    return event;
  }

  function schedule(delayMs) {
    if (timer !== null) return;
    timer = setTimeout(function () {
      timer = null;
      send(false);
    }, delayMs);
  }

  function backOff() {
    schedule(retryMs);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }

  function body(batch) {
    return JSON.stringify({ batch: batch });
  }

  function pixel(batch) {
    // Last resort: one image request per event (the pixel knows no event ids).
    batch.forEach(function (event) {
      if (!event.activity) return;
      var params = ["sdr_s=" + encodeURIComponent(event.service_id),
                    "sdr_o=" + encodeURIComponent(event.account_id),
                    "sdr_a=" + encodeURIComponent(event.activity),
                    "sdr_m=" + encodeURIComponent(event.module)];
      if (event.user_id) params.push("sdr_u=" + encodeURIComponent(event.user_id));
      new Image().src = endpoint("/pixel.gif?" + params.join("&"));
    });
  }

  function send(leaving) {
    if (!config || queue.length === 0) return;
    if (leaving) {
      // The page is going away: hand everything to the browser, which sends it later.
      while (queue.length) {
        var batch = queue.splice(0, MAX_BATCH);
        var sent = false;
        if (global.navigator && navigator.sendBeacon) {
          sent = navigator.sendBeacon(endpoint("/v1/collect"),
                                      new Blob([body(batch)], { type: "text/plain" }));
        }
        if (!sent && global.fetch) {
          fetch(endpoint("/v1/collect"), { method: "POST", body: body(batch), keepalive: true,
                                           headers: { "Content-Type": "text/plain" } })
            .catch(function () {});
          sent = true;
        }
        if (!sent) pixel(batch);
      }
      return;
    }
    if (inFlight) return;
    if (!global.fetch) {
      send(true);
      return;
    }
    var batch = queue.splice(0, MAX_BATCH);
    inFlight = batch.length;
    fetch(endpoint("/v1/collect"), { method: "POST", body: body(batch), keepalive: true,
                                     headers: { "Content-Type": "text/plain" } })
      .then(function (response) {
        inFlight = 0;
        if (response.status === 503 || response.status === 429 || response.status >= 500) {
          queue = batch.concat(queue); // same event ids: a retry counts once
          backOff();
          return;
        }
        if (response.status >= 400 && global.console) {
          console.warn("usage.js: the collector refused a batch (" + response.status + ")");
        }
        retryMs = FIRST_RETRY_MS;
        if (queue.length) schedule(0);
      })
      .catch(function () {
        inFlight = 0;
        queue = batch.concat(queue);
        backOff();
      });
  }

  function onActivity() {
    if (!config || !config.heartbeat || !account) return;
    var now = Date.now();
    if (now - lastHeartbeat < config.heartbeatIntervalMs) return;
    lastHeartbeat = now;
    var event = baseEvent();
    event.module = "__system";
    event.activity = "__heartbeat";
    enqueue(event);
  }

  var usage = {
    init: guard(function (options) {
      config = {
        serviceId: options.serviceId,
        collectorUrl: options.collectorUrl || "",
        flushIntervalMs: options.flushIntervalMs === undefined ? 1000 : options.flushIntervalMs,
        heartbeat: options.heartbeat === true,
        heartbeatIntervalMs: options.heartbeatIntervalMs || 60000
      };
      usage.identify(options.account, options.user);
      if (!usage._listening && global.addEventListener) {
        usage._listening = true;
        global.addEventListener("pagehide", guard(function () { send(true); }));
        global.document && document.addEventListener("visibilitychange", guard(function () {
          if (document.visibilityState === "hidden") send(true);
        }));
        ["click", "keydown", "scroll", "mousemove"].forEach(function (name) {
          global.addEventListener(name, guard(onActivity), { passive: true });
        });
      }
    }),

    identify: guard(function (newAccount, newUser) {
      if (!newAccount || !newAccount.id) return;
      account = newAccount;
      user = newUser || null;
      if (!config) return;
      if (account.name || account.parent_id) {
        var event = baseEvent();
        if (account.name) event.account_name = account.name;
        if (account.parent_id) event.parent_id = account.parent_id;
        enqueue(event);
      }
    }),

    track: guard(function (activity, module) {
      if (!config || !account || !activity || !module) return;
      var event = baseEvent();
      event.activity = String(activity);
      event.module = String(module);
      enqueue(event);
    }),

    flush: guard(function () { send(false); }),

    // Events not yet accepted by the collector: queued or in the request under way.
    pending: function () { return queue.length + inFlight; }
  };

  global.usage = usage;
})(typeof window !== "undefined" ? window : this);
