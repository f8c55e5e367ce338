/**
 * The per-connection frame limits every WebSocket endpoint shares (`/ws` and the GraphQL
 * subscriptions on `/graphql`): frames per second and bytes per frame, checked before a frame is
 * parsed so a flood costs one comparison per frame.
 */

/** A connection's current one-second window. */
export interface FrameWindow {
  /** Start (ms) of the current one-second window and the frames received in it. */
  windowStartMs: number;
  windowFrames: number;
}

export interface FrameLimits {
  /** Frames beyond this in one second are refused with `rate_limited`. */
  maxMessagesPerSecond: number;
  /** Frames larger than this are refused with `frame_too_large`. */
  maxFrameBytes: number;
}

/** Why a frame is refused before it is read. */
export interface FrameRefusal {
  code: 'rate_limited' | 'frame_too_large';
  message: string;
}

/** A fresh window for a new connection. */
export function newFrameWindow(): FrameWindow {
  return { windowStartMs: 0, windowFrames: 0 };
}

/** The refusal a frame of `frameBytes` earns on a connection, or undefined when it may be read. */
export function checkFrame(
  limits: FrameLimits,
  window: FrameWindow,
  frameBytes: number,
  nowMs = Date.now(),
): FrameRefusal | undefined {
  // A fixed one-second window: one comparison per frame.
  if (nowMs - window.windowStartMs >= 1_000) {
    window.windowStartMs = nowMs;
    window.windowFrames = 0;
  }
  if (++window.windowFrames > limits.maxMessagesPerSecond) {
    return {
      code: 'rate_limited',
      message: `more than ${limits.maxMessagesPerSecond} frames in one second; this frame was ignored`,
    };
  }
  if (frameBytes > limits.maxFrameBytes) {
    return {
      code: 'frame_too_large',
      message: `frame of ${frameBytes} bytes exceeds the limit of ${limits.maxFrameBytes} bytes`,
    };
  }
  return undefined;
}
