# bench/plot.gp: idle tick cost against table size (bench/run draws it).
# gnuplot -e "datafile='tick_cost.tsv'; outfile='tick_cost.png'" bench/plot.gp
set terminal pngcairo size 900,560 font ",10" noenhanced
set output outfile
set title "Cost of a tick with nothing to do (median)"
set xlabel "agent_task_queue rows (runtimes = rows / 100)"
set ylabel "ms per tick"
set logscale xy
set yrange [0.3:*]
set format x "10^{%L}"
set format x "%.0e"
set grid
set key top left
set datafile separator "\t"
plot datafile every ::1 using 1:3 with linespoints lw 2 pt 5 title "extension, no advised index", \
     datafile every ::1 using 1:4 with linespoints lw 2 pt 4 dt 2 title "original's SQL (seed_sweeper), no advised index", \
     datafile every ::1 using 1:5 with linespoints lw 2 pt 7 title "extension, advised indexes", \
     datafile every ::1 using 1:6 with linespoints lw 2 pt 6 dt 2 title "original's SQL (seed_sweeper), advised indexes", \
     1 with lines lt 0 lw 2 title "target: 1 ms"
