// hls.js ships the light build without its own declarations: it has the same API as the full one.
declare module 'hls.js/light' {
  export { default } from 'hls.js';
}
