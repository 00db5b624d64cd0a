// Widget styles are imported for their side effect: esbuild writes them to
// static/<widget>.css, which the Python class hands to anywidget as `_css`.
declare module "*.css";
